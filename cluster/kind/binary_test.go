package kind

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo is a go command that "installs" a fake kind into $GOBIN.
const fakeGo = `#!/bin/sh
[ "$1 $2" = "install sigs.k8s.io/kind@v0.33.0" ] || { echo "fake go: unexpected $*" >&2; exit 2; }
[ -n "$FAKE_GO_FAIL" ] && { echo "go: sigs.k8s.io/kind@v0.33.0: 403 Forbidden" >&2; exit 1; }
printf '#!/bin/sh\necho "kind v0.33.0 go1.26 linux/amd64"\n' > "$GOBIN/kind" && chmod +x "$GOBIN/kind"
`

func TestFindKind(t *testing.T) {
	cases := []struct {
		name         string
		pathVersion  string // version of the kind on PATH; "" for none
		goFails      bool
		noGo         bool
		want         string // "path", "cache"
		wantErr      string
		wantProgress string
	}{
		{name: "pinned kind on PATH", pathVersion: KindVersion, want: "path"},
		{name: "other kind on PATH", pathVersion: "v0.20.0", want: "cache", wantProgress: "is v0.20.0, not " + KindVersion},
		{name: "no kind", want: "cache", wantProgress: "building sigs.k8s.io/kind@" + KindVersion},
		{name: "build fails", goFails: true, wantErr: "go install sigs.k8s.io/kind@v0.33.0: exit status 1: go: sigs.k8s.io/kind@v0.33.0: 403 Forbidden"},
		{name: "no go", noGo: true, wantErr: "go is not on PATH to build it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if tc.pathVersion != "" {
				script := "#!/bin/sh\necho \"kind " + tc.pathVersion + " go1.26 linux/amd64\"\n"
				if err := os.WriteFile(filepath.Join(bin, "kind"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.noGo {
				if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin+":/usr/bin:/bin")
			if tc.goFails {
				t.Setenv("FAKE_GO_FAIL", "1")
			}
			cache := t.TempDir()
			var progress bytes.Buffer
			got, err := FindKind(context.Background(), "", cache, &progress)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if entries, _ := os.ReadDir(filepath.Dir(KindBinaryPath(cache))); len(entries) != 0 {
					t.Errorf("a failed build left %v behind", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"path": filepath.Join(bin, "kind"), "cache": KindBinaryPath(cache)}[tc.want]
			if got != want {
				t.Errorf("FindKind = %s, want %s", got, want)
			}
			if !strings.Contains(progress.String(), tc.wantProgress) {
				t.Errorf("progress %q lacks %q", progress.String(), tc.wantProgress)
			}
			// Once built, the cached binary is found without building again.
			if tc.want == "cache" {
				progress.Reset()
				if again, err := FindKind(context.Background(), "", cache, &progress); err != nil || again != want || strings.Contains(progress.String(), "building") {
					t.Errorf("second FindKind = %s, %v (%q)", again, err, progress.String())
				}
			}
		})
	}
}

// TestBuildKindForReal builds the pinned kind with the Go toolchain from
// the module proxy, as FindKind does on a machine without it. It takes a
// minute on a cold cache, so it runs only with NETPOLCHECK_TEST_BUILD_KIND=1.
func TestBuildKindForReal(t *testing.T) {
	if os.Getenv("NETPOLCHECK_TEST_BUILD_KIND") == "" {
		t.Skip("set NETPOLCHECK_TEST_BUILD_KIND=1 to build kind " + KindVersion + " with go install")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH")
	}
	cache := t.TempDir()
	var progress bytes.Buffer
	path, err := FindKind(context.Background(), "", cache, &progress)
	if err != nil {
		t.Fatal(err)
	}
	version, err := kindVersion(context.Background(), path)
	if err != nil || version != KindVersion {
		t.Errorf("built kind reports %q (%v), want %s", version, err, KindVersion)
	}
}
