// Package kubeconfig loads a cluster's client configuration with
// client-go's loading rules, as kubectl does.
package kubeconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load returns the client configuration of paths: one kubeconfig file, or
// several joined by the list separator (":"), merged as kubectl merges the
// files of KUBECONFIG; with no paths, the files of $KUBECONFIG, else
// ~/.kube/config. A non-empty context replaces the current context.
func Load(paths, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if list := filepath.SplitList(paths); len(list) == 1 {
		rules.ExplicitPath = list[0]
	} else if len(list) > 1 {
		rules.Precedence = list
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err == nil {
		return cfg, nil
	}
	from := rules.ExplicitPath
	if from == "" {
		from = strings.Join(rules.Precedence, string(filepath.ListSeparator))
	}
	if clientcmd.IsEmptyConfig(err) || errors.Is(err, clientcmd.ErrEmptyConfig) {
		return nil, fmt.Errorf("no cluster in the kubeconfig (%s): give --kubeconfig, set KUBECONFIG, or write ~/.kube/config: %w", from, err)
	}
	return nil, fmt.Errorf("loading the kubeconfig (%s): %w", from, err)
}
