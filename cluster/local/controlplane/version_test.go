package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Paths of the module files, relative to this package's directory.
const (
	mainGoMod    = "../../../go.mod"
	kubebinGoMod = "../kubebin/go.mod"
)

func TestReleaseForStaging(t *testing.T) {
	for staging, want := range map[string]string{
		"v0.37.2":       "v1.37.2",
		"v0.36.0":       "v1.36.0",
		"v0.38.0-rc.1":  "v1.38.0-rc.1",
		"v0.0.0":        "",
		"v1.2.3":        "",
		"not-a-version": "",
	} {
		got, err := releaseForStaging(staging)
		if want == "" {
			if err == nil {
				t.Errorf("releaseForStaging(%q) = %q, want an error", staging, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("releaseForStaging(%q) = %q, %v; want %q", staging, got, err, want)
		}
	}
}

// TestKubernetesVersionMatchesModules checks that KubernetesVersion and the
// tools module's Kubernetes release match the main module's client
// libraries, and that the tools module pins every staging module to the same
// version as the main module.
func TestKubernetesVersionMatchesModules(t *testing.T) {
	apiVersion, err := requiredVersion(mainGoMod, apiModule)
	if err != nil {
		t.Fatal(err)
	}
	release, err := releaseForStaging(apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := requiredVersion(kubebinGoMod, kubernetesModule)
	if err != nil {
		t.Fatal(err)
	}
	if KubernetesVersion != release {
		t.Errorf("KubernetesVersion = %s, but the main module's %s %s means Kubernetes %s", KubernetesVersion, apiModule, apiVersion, release)
	}
	if pinned != release {
		t.Errorf("%s requires %s %s, but the main module's %s %s means Kubernetes %s", kubebinGoMod, kubernetesModule, pinned, apiModule, apiVersion, release)
	}

	data, err := os.ReadFile(kubebinGoMod)
	if err != nil {
		t.Fatal(err)
	}
	file, err := modfile.Parse(kubebinGoMod, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, r := range file.Replace {
		if !strings.HasPrefix(r.Old.Path, "k8s.io/") {
			continue
		}
		replaced[r.Old.Path] = true
		if r.New.Path != r.Old.Path || r.New.Version != apiVersion {
			t.Errorf("%s replaces %s with %s %s, want %s %s", kubebinGoMod, r.Old.Path, r.New.Path, r.New.Version, r.Old.Path, apiVersion)
		}
	}
	for _, mod := range []string{"k8s.io/api", "k8s.io/apimachinery", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/component-base"} {
		if !replaced[mod] {
			t.Errorf("%s does not pin %s", kubebinGoMod, mod)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(kubebinGoMod), "go.sum")); err != nil {
		t.Errorf("the tools module needs its go.sum: %v", err)
	}
}

// releaseForStaging maps a staging module version (v0.MINOR.PATCH) to the
// Kubernetes release it was published with (v1.MINOR.PATCH).
func releaseForStaging(version string) (string, error) {
	if !semver.IsValid(version) || semver.Major(version) != "v0" || semver.MajorMinor(version) == "v0.0" {
		return "", fmt.Errorf("%s version %q is not a published staging version v0.MINOR.PATCH", apiModule, version)
	}
	return "v1" + strings.TrimPrefix(semver.Canonical(version), "v0"), nil
}
