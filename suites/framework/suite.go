package framework

import (
	"os"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive // as does Gomega's

	"github.com/netpolcheck/netpolcheck/suites/progress"
)

// Suite is the cluster connection a Ginkgo suite shares between its specs.
type Suite struct {
	name string
	cfg  Config
	// shared is what the first process prepared; only it uses it at the end.
	shared Shared
	env    *Env
	model  *ProbeModel
}

// NewSuite registers the suite's setup and teardown: the first process
// prepares the cluster once (bringing the local cluster up if none runs, and
// creating the external hosts), every process connects and, when
// withProbeModel is set, creates its own probe model; at the end the first
// process takes down a local cluster it brought up. With $NETPOLCHECK_PROGRESS
// set, every finished case is appended to that file (package progress).
// Call it at package level of the suite:
// var suite = framework.NewSuite("recipes", false).
func NewSuite(name string, withProbeModel bool) *Suite {
	s := &Suite{name: name}
	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		cfg, err := ConfigFromEnv()
		Expect(err).NotTo(HaveOccurred())
		shared, err := Prepare(ctx, cfg, ExternalHosts())
		Expect(err).NotTo(HaveOccurred())
		s.shared = shared
		return shared.Encode()
	}, func(ctx SpecContext, data []byte) {
		cfg, err := ConfigFromEnv()
		Expect(err).NotTo(HaveOccurred())
		shared, err := DecodeShared(data)
		Expect(err).NotTo(HaveOccurred())
		s.cfg = cfg
		s.env, err = Connect(cfg, shared, name, GinkgoParallelProcess())
		Expect(err).NotTo(HaveOccurred())
		if withProbeModel {
			s.model = CreateProbeModel(ctx, s.env)
		}
	})
	if stream := os.Getenv(progress.EnvFile); stream != "" {
		ReportAfterEach(func(r SpecReport) {
			e := progress.Event{Suite: name, Case: r.FullText(), State: r.State.String(), Seconds: r.RunTime.Seconds()}
			if err := progress.Append(stream, e); err != nil {
				GinkgoWriter.Printf("progress: %v\n", err)
			}
		})
	}
	SynchronizedAfterSuite(func(ctx SpecContext) {
		if s.model != nil {
			Expect(s.model.Delete(ctx)).To(Succeed())
		}
	}, func(ctx SpecContext) {
		Expect(Finish(ctx, s.cfg, s.shared)).To(Succeed())
	})
	return s
}

// Env returns this process's connection; valid inside specs.
func (s *Suite) Env() *Env { return s.env }

// Model returns this process's probe model; valid inside specs of a suite
// created with a probe model.
func (s *Suite) Model() *ProbeModel { return s.model }

// Run runs a scenario in the current spec.
func (s *Suite) Run(ctx SpecContext, scenario *Scenario) { Run(ctx, s.env, scenario, s.name) }
