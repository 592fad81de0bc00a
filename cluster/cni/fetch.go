package cni

import (
	"context"
	"fmt"
	"io"
	"net/http"
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

// ModuleFilesReader returns the files of module m (slash paths from the
// module root) that keep selects, as gomodule.Source.ReadFiles does.
type ModuleFilesReader func(ctx context.Context, m gomodule.Module, keep func(name string) bool) (map[string][]byte, error)

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
