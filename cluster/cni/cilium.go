package cni

import (
	"context"
	"fmt"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

// ciliumChartDir is the chart's directory in the Cilium module.
const ciliumChartDir = "install/kubernetes/cilium"

// CiliumModule is the Go module of the pinned Cilium release: its zip holds
// the chart the installer renders (and the agent's sources the local
// cluster builds).
func CiliumModule() gomodule.Module {
	return gomodule.Module{Path: "github.com/cilium/cilium", Version: "v" + CiliumVersion, Sum: CiliumModuleSum}
}

// ciliumValues are the chart values the installer sets: the values Cilium's
// kind guide gives (pod CIDRs from the nodes, images preloaded or pulled
// once), and one operator replica to keep a CI-sized cluster light.
// Everything else is the chart's default: VXLAN tunnel beside kube-proxy,
// no socket load-balancing. Without an L7 proxy (Options.NoL7Proxy) the
// agent runs with l7Proxy=false and the chart installs no Envoy DaemonSet.
func ciliumValues(noL7Proxy bool) []string {
	values := []string{
		"ipam.mode=kubernetes",
		"image.pullPolicy=IfNotPresent",
		"operator.replicas=1",
	}
	if noL7Proxy {
		values = append(values, "l7Proxy=false", "envoy.enabled=false")
	}
	return values
}

// cilium installs Cilium from its pinned Helm chart, read from the Cilium
// module's zip (CiliumModule, checked against its pinned hash) and rendered
// with the Helm SDK as `helm template` renders it; the objects are applied
// like every other manifest: no Helm release is recorded in the cluster,
// neither helm nor the cilium CLI is needed, and the rendered objects are
// checked and waited for like the other installers'. Node pod CIDRs come
// from the cluster (ipam.mode=kubernetes).
type cilium struct{ opts Options }

func (c *cilium) Name() string         { return "cilium" }
func (c *cilium) EnforcesPolicy() bool { return true }
func (c *cilium) Source() string {
	return "Helm chart " + ciliumChartDir + " of " + CiliumModule().String()
}

func (c *cilium) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	m := CiliumModule()
	files, err := c.opts.ReadModuleFiles(ctx, m, func(name string) bool {
		return strings.HasPrefix(name, ciliumChartDir+"/")
	})
	if err != nil {
		return nil, fmt.Errorf("reading the cilium chart from %s: %w", m, err)
	}
	out, err := renderChart(files, ciliumChartDir, "cilium", "kube-system", c.opts.KubeVersion, ciliumValues(c.opts.NoL7Proxy))
	if err != nil {
		return nil, fmt.Errorf("rendering the cilium %s chart: %w", CiliumVersion, err)
	}
	objs, err := Decode(out)
	if err != nil {
		return nil, fmt.Errorf("decoding the cilium %s chart: %w", CiliumVersion, err)
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "cilium")
	if err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	if _, err := container(ds, "cilium-agent"); err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	if _, err := mustFind(objs, "Deployment", "kube-system", "cilium-operator"); err != nil {
		return nil, fmt.Errorf("cilium %s: %w", CiliumVersion, err)
	}
	return objs, nil
}

// renderChart renders the chart whose files (slash paths) lie under dir as
// `helm template RELEASE DIR --namespace NAMESPACE [--kube-version V]
// --skip-tests --set VALUE...` does: client-only, every template and every
// hook but tests, in Helm's install order, as one multi-document YAML.
func renderChart(files map[string][]byte, dir, releaseName, namespace, kubeVersion string, values []string) ([]byte, error) {
	var buffered []*loader.BufferedFile
	for name, data := range files {
		rel, ok := strings.CutPrefix(name, dir+"/")
		if !ok {
			continue
		}
		buffered = append(buffered, &loader.BufferedFile{Name: path.Clean(rel), Data: data})
	}
	if len(buffered) == 0 {
		return nil, fmt.Errorf("no chart files under %s", dir)
	}
	chrt, err := loader.LoadFiles(buffered)
	if err != nil {
		return nil, fmt.Errorf("loading the chart in %s: %w", dir, err)
	}
	vals := map[string]any{}
	for _, v := range values {
		if err := strvals.ParseInto(v, vals); err != nil {
			return nil, fmt.Errorf("value %q: %w", v, err)
		}
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.ReleaseName, install.Namespace = releaseName, namespace
	install.DryRun, install.DryRunOption, install.ClientOnly, install.Replace = true, "true", true, true
	if kubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", kubeVersion, err)
		}
		install.KubeVersion = kv
	}
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	out.WriteString(rel.Manifest)
	for _, hook := range rel.Hooks {
		if isTestHook(hook) {
			continue
		}
		fmt.Fprintf(&out, "\n---\n# Source: %s\n%s\n", hook.Path, hook.Manifest)
	}
	return []byte(out.String()), nil
}

// isTestHook reports whether hook runs only under `helm test`.
func isTestHook(hook *release.Hook) bool {
	for _, event := range hook.Events {
		if event == release.HookTest {
			return true
		}
	}
	return false
}
