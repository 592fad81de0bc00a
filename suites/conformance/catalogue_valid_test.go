package conformance_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// TestCatalogueIsValid checks every case offline, without a cluster: its
// policies pass the API server's validation, every stated outcome agrees
// with the engine on the offline model, invalid manifests are rejected with
// the stated reason, and every later step changes something.
func TestCatalogueIsValid(t *testing.T) {
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	ids := map[string]bool{}
	for _, c := range catalogue() {
		if !kebab.MatchString(c.id) || ids[c.id] {
			t.Errorf("%s: the ID must be unique kebab-case", c.ID())
		}
		ids[c.id] = true
		if c.title == "" || len(c.steps) == 0 {
			t.Errorf("%s: needs a title and steps", c.ID())
		}
		labels, err := c.Labels()
		if err != nil {
			t.Errorf("%s: labels: %v", c.ID(), err)
		} else if !slices.Contains(labels, framework.LabelConformance) {
			t.Errorf("%s: labels %v lack %s", c.ID(), labels, framework.LabelConformance)
		}
		for i, st := range c.offline() {
			checkStep(t, &c, i, st)
		}
	}
}

func checkStep(t *testing.T, c *testCase, i int, st offlineStep) {
	t.Helper()
	s := c.steps[i]
	where := c.ID() + " step " + s.name
	if st.rejected {
		_, err := manifest.ParsePolicies(where, []byte(s.manifest), "default")
		if err == nil || !strings.Contains(err.Error(), s.rejected) {
			t.Errorf("%s: want a rejection containing %q, got %v", where, s.rejected, err)
		}
		return
	}
	if i > 0 && !st.changed {
		t.Errorf("%s: a later step must change policies or labels", where)
	}
	if len(s.expect) == 0 {
		t.Errorf("%s: state the step's key outcomes", where)
	}
	names := map[string]bool{}
	for _, np := range st.inForce {
		key := np.Namespace + "/" + np.Name
		if names[key] {
			t.Errorf("%s: policy %s is listed twice", where, key)
		}
		names[key] = true
		if errs := matrix.ValidatePolicy(np); len(errs) > 0 {
			t.Errorf("%s: policy %s is invalid: %v", where, key, errs.ToAggregate())
		}
	}
	engine, err := matrix.NewEngine(st.model, st.inForce)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	table := engine.Table()
	for _, o := range s.expect {
		o, ok := st.world.outcome(o)
		if !ok {
			t.Errorf("%s: outcome %s -> %s names a node the offline model does not have", where, o.From, o.To)
			continue
		}
		got, ok := table.Get(o.From, o.To, o.Port)
		if !ok {
			t.Errorf("%s: outcome %s -> %s %s is not a cell of the matrix", where, o.From, o.To, o.Port)
			continue
		}
		if got != o.Allowed {
			x, _ := engine.Explain(o.From, o.To, o.Port)
			t.Errorf("%s: outcome %s -> %s %s allowed=%v, the engine says %v:\n%s", where, o.From, o.To, o.Port, o.Allowed, got, x)
		}
	}
}

// TestCatalogueReproducesUpstreamOnce checks that no upstream test is
// reproduced by two cases. Which upstream tests exist, and that each is
// reproduced or says why not, TestUpstreamMapping checks against upstream's
// source.
func TestCatalogueReproducesUpstreamOnce(t *testing.T) {
	seen := map[upstreamTest]string{}
	for _, c := range catalogue() {
		for _, u := range c.upstream {
			if other, dup := seen[u]; dup {
				t.Errorf("%q (%s) is reproduced by %s and %s", u.it, u.context, other, c.ID())
			}
			seen[u] = c.ID()
		}
	}
}

// TestReadmeMapsTheCatalogue checks that README.md names every case (the
// upstream tables TestUpstreamMapping checks).
func TestReadmeMapsTheCatalogue(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, c := range catalogue() {
		if !strings.Contains(readme, "`"+c.ID()+"`") {
			t.Errorf("README.md does not list %s", c.ID())
		}
	}
}
