package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/gomodule"
)

// maxManifestBytes bounds a fetched manifest (Calico's, the largest, is
// about 0.4 MB).
const maxManifestBytes = 32 << 20

// fetchTimeout bounds one download.
const fetchTimeout = 2 * time.Minute

// Fetcher downloads the document at url.
type Fetcher func(ctx context.Context, url string) ([]byte, error)

// ModuleFileReader reads the file name (a slash path from the module root)
// of module m at its pinned version, as gomodule.ReadFile does.
type ModuleFileReader func(ctx context.Context, m gomodule.Module, name string) ([]byte, error)

// Runner runs a command with args and returns its standard output.
type Runner func(ctx context.Context, args ...string) ([]byte, error)

// HTTPFetcher fetches over HTTP(S) with client (nil: a client with the
// default transport), failing on any status but 200 OK.
func HTTPFetcher(client *http.Client) Fetcher {
	if client == nil {
		client = &http.Client{}
	}
	return func(ctx context.Context, url string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", url, err)
		}
		if len(body) > maxManifestBytes {
			return nil, fmt.Errorf("fetching %s: larger than %d bytes", url, maxManifestBytes)
		}
		return body, nil
	}
}

// HelmBinary runs the helm executable at path (a name is looked up on
// PATH).
func HelmBinary(path string) Runner {
	return func(ctx context.Context, args ...string) ([]byte, error) {
		bin, err := exec.LookPath(path)
		if err != nil {
			return nil, fmt.Errorf("helm not found (%w): install Helm (https://helm.sh/docs/intro/install/)", err)
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				return nil, fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
			}
			return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		if stdout.Len() == 0 {
			return nil, errors.New("helm " + strings.Join(args, " ") + ": no output")
		}
		return stdout.Bytes(), nil
	}
}
