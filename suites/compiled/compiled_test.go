package compiled

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSuites puts an executable file for every suite into dir.
func writeSuites(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range binaries() {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, b)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeGo writes a go command that logs its arguments and working directory
// to log, answers `mod download -json` with source as the module's
// directory, and writes the -o file of `test -c`.
func fakeGo(t *testing.T, source, log string) string {
	t.Helper()
	script := `#!/bin/sh
echo "$PWD $*" >> ` + log + `
case "$1 $2" in
"mod download") echo '{"Dir": "` + source + `"}' ;;
"test -c") while [ "$1" != "-o" ]; do shift; done; printf '#!/bin/sh\n' > "$2"; chmod +x "$2" ;;
*) exit 3 ;;
esac
`
	path := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFind(t *testing.T) {
	const mod = "github.com/netpolcheck/netpolcheck"
	for _, tc := range []struct {
		name        string
		nextToExe   bool
		inCache     bool
		version     string
		withGo      bool
		want        string // "exe", "cache"
		wantBuilt   bool
		wantErrPart string
	}{
		{name: "next to the executable", nextToExe: true, version: "(devel)", want: "exe"},
		{name: "next to the executable wins over the cache", nextToExe: true, inCache: true, version: "v1.2.3", want: "exe"},
		{name: "cached for the version", inCache: true, version: "v1.2.3", want: "cache"},
		{name: "built for a released version", version: "v1.2.3", withGo: true, want: "cache", wantBuilt: true},
		{name: "built for a pseudo-version", version: "v0.0.0-20261202061124-8fda5b3abcde", withGo: true, want: "cache", wantBuilt: true},
		{name: "a checkout build", version: "(devel)", withGo: true, wantErrPart: "run `make build`"},
		{name: "modified sources", version: "v0.0.0-20261202061124-8fda5b3abcde+dirty", withGo: true, wantErrPart: "no released module version"},
		{name: "no go command", version: "v1.2.3", wantErrPart: "no go command on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l := Locator{ExeDir: filepath.Join(root, "bin"), CacheRoot: filepath.Join(root, "cache"), ModulePath: mod, Version: tc.version}
			cacheDir := filepath.Join(l.CacheRoot, "suites-"+tc.version)
			if tc.nextToExe {
				writeSuites(t, DirNextTo(l.ExeDir))
			}
			if tc.inCache {
				writeSuites(t, cacheDir)
			}
			source := filepath.Join(root, "modcache", mod+"@"+tc.version)
			if err := os.MkdirAll(source, 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(root, "go.log")
			if tc.withGo {
				l.GoTool = fakeGo(t, source, log)
			}
			got, err := l.Find(t.Context())
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("Find: %q, %v; want an error containing %q", got, err, tc.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"exe": DirNextTo(l.ExeDir), "cache": cacheDir}[tc.want]
			if got != want || !complete(got) {
				t.Errorf("Find = %s (complete %v), want %s", got, complete(got), want)
			}
			calls, _ := os.ReadFile(log)
			if !tc.wantBuilt {
				if len(calls) != 0 {
					t.Errorf("built although the suites were there:\n%s", calls)
				}
				return
			}
			// go mod download, then go test -c of each suite in the module's source.
			lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
			if len(lines) != 1+len(Suites()) || !strings.HasSuffix(lines[0], " mod download -json "+mod+"@"+tc.version) {
				t.Fatalf("go calls:\n%s\nwant go mod download -json %s@%s, then go test -c of each suite", calls, mod, tc.version)
			}
			for i, s := range Suites() {
				prefix := source + " test -c -trimpath -o " + filepath.Join(l.CacheRoot, "suites-build-")
				if !strings.HasPrefix(lines[1+i], prefix) || !strings.HasSuffix(lines[1+i], "/"+Binary(s)+" ./suites/"+s) {
					t.Errorf("go call %q, want %s.../%s ./suites/%s", lines[1+i], prefix, Binary(s), s)
				}
			}
			if leftovers, _ := filepath.Glob(filepath.Join(l.CacheRoot, "suites-build-*")); len(leftovers) != 0 {
				t.Errorf("build directories left behind: %v", leftovers)
			}
		})
	}
}

// Without a cache directory (a pod without HOME) the suites next to the
// executable are found, and a released version says what is missing
// instead of building into a relative directory.
func TestFindWithoutCache(t *testing.T) {
	root := t.TempDir()
	l := Locator{ExeDir: filepath.Join(root, "bin"), ModulePath: "github.com/netpolcheck/netpolcheck", Version: "v1.2.3", GoTool: "/nonexistent/go"}
	if _, err := l.Find(t.Context()); err == nil || !strings.Contains(err.Error(), "no cache directory") {
		t.Errorf("Find without suites or cache: %v, want an error about the cache directory", err)
	}
	writeSuites(t, DirNextTo(l.ExeDir))
	if got, err := l.Find(t.Context()); err != nil || got != DirNextTo(l.ExeDir) {
		t.Errorf("Find = %q, %v; want the suites next to the executable", got, err)
	}
}
