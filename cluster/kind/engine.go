package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// EngineEnv selects kind's node provider (docker, podman or nerdctl), as
// kind itself reads it.
const EngineEnv = "KIND_EXPERIMENTAL_PROVIDER"

// engineTimeout bounds one engine command of the checks.
const engineTimeout = 30 * time.Second

// engine returns the container engine CLI kind will use.
func engine() string {
	if e := os.Getenv(EngineEnv); e != "" {
		return e
	}
	return "docker"
}

// CheckEngine fails with a clear error unless the container engine kind
// uses (docker, or $KIND_EXPERIMENTAL_PROVIDER) answers.
func CheckEngine(ctx context.Context) error {
	_, err := runEngine(ctx, "info")
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoEngine):
		return fmt.Errorf("kind needs a Docker (or podman) engine: %s %w", engine(), err)
	default:
		return fmt.Errorf("kind needs a Docker (or podman) engine: %s not reachable: %w", engine(), err)
	}
}

// checkImage fails unless image is in the local engine, which is where
// `kind load docker-image` takes it from.
func checkImage(ctx context.Context, image string) error {
	if _, err := runEngine(ctx, "image", "inspect", image); err != nil {
		return fmt.Errorf("image %s is not in the local %s engine (%w): build it with `make image`, or pass another image", image, engine(), err)
	}
	return nil
}

// errNoEngine is runEngine's error when the engine CLI is not installed.
var errNoEngine = errors.New("not found on PATH")

// runEngine runs the engine CLI; its error is errNoEngine, or the engine's
// own message.
func runEngine(ctx context.Context, args ...string) ([]byte, error) {
	path, err := exec.LookPath(engine())
	if err != nil {
		return nil, errNoEngine
	}
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := lastLine(stderr.String()); msg != "" {
			return nil, errors.New(msg)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
