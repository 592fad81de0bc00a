package kind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKind is a kind binary that emulates the subcommands the e2e-framework
// runs, keeping the cluster list in a directory and logging every call.
const fakeKind = `#!/bin/sh
state=$(dirname "$0")/state
mkdir -p "$state"
echo "$*" >> "$state/calls"
arg() { # value of flag $1 among the remaining arguments
	flag=$1; shift
	while [ $# -gt 0 ]; do [ "$1" = "$flag" ] && { echo "$2"; return; }; shift; done
}
kubeconfig() {
	printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: kind-%s\n  cluster: {server: "https://127.0.0.1:1"}\ncontexts:\n- name: kind-%s\n  context: {cluster: kind-%s, user: kind-%s}\ncurrent-context: kind-%s\nusers:\n- name: kind-%s\n  user: {token: fake}\n' "$1" "$1" "$1" "$1" "$1" "$1"
}
case "$1 $2" in
"version "*) echo "kind ${FAKE_KIND_VERSION:-v0.33.0} go1.26 linux/amd64" ;;
"get clusters") cat "$state"/cluster-* 2>/dev/null; true ;;
"create cluster")
	name=$(arg --name "$@")
	cp "$(arg --config "$@")" "$state/config-$name.yaml"
	echo "$name" > "$state/cluster-$name"
	kubeconfig "$name" > "$(arg --kubeconfig "$@")" ;;
"get kubeconfig") kubeconfig "$(arg --name "$@")" ;;
"load docker-image") [ -f "$state/cluster-$(arg --name "$@")" ] || { echo "no cluster" >&2; exit 1; } ;;
"delete cluster") rm -f "$state/cluster-$(arg --name "$@")" ;;
"export logs") mkdir -p "$3" && echo logs > "$3/kind-version.txt" ;;
*) echo "fake kind: unexpected $*" >&2; exit 2 ;;
esac
`

// fakeEngine is a docker CLI: "info" fails unless FAKE_ENGINE_UP is set,
// and "image inspect" knows only the images listed in FAKE_ENGINE_IMAGES.
const fakeEngine = `#!/bin/sh
case "$1" in
info) [ -n "$FAKE_ENGINE_UP" ] || { echo "Client: fake" ; echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; } ;;
image) for i in $FAKE_ENGINE_IMAGES; do [ "$i" = "$3" ] && exit 0; done; echo "Error response from daemon: No such image: $3" >&2; exit 1 ;;
*) exit 2 ;;
esac
`

// fakeTools puts a fake kind and docker into a directory and makes it the
// whole PATH (plus sh's directory); it returns the directory.
func fakeTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"kind": fakeKind, "docker": fakeEngine} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	t.Setenv(EngineEnv, "")
	return dir
}

// kindCalls returns the fake kind's calls, one per line.
func kindCalls(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state", "calls"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}
