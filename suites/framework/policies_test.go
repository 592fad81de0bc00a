package framework

import (
	"errors"
	"strings"
	"testing"
)

func TestServerVerdicts(t *testing.T) {
	runName := func(logical string) string { return logical + "-run1" }
	cases := []struct {
		name      string
		manifests string
		// accept: the fake API server accepts bodies containing it.
		accept    string
		wantSent  []string // namespace and body of each request, in order
		wantLines []string
	}{{
		name:      "a mapping is sent to its run namespace",
		manifests: "kind: NetworkPolicy\nmetadata: {name: a, namespace: x}\n",
		wantSent:  []string{`x-run1 {"kind":"NetworkPolicy","metadata":{"name":"a","namespace":"x-run1"}}`},
		wantLines: []string{"document 1: rejected by the API server: invalid"},
	}, {
		name:      "a list is sent and judged by the API server",
		manifests: "- kind: NetworkPolicy\n",
		accept:    "[",
		wantSent:  []string{`default-run1 [{"kind":"NetworkPolicy"}]`},
		wantLines: []string{"document 1: accepted by the API server"},
	}, {
		name:      "a scalar is sent",
		manifests: "just words\n",
		wantSent:  []string{`default-run1 "just words"`},
		wantLines: []string{"document 1: rejected by the API server: invalid"},
	}, {
		name:      "an empty document is not sent and says so",
		manifests: "---\n---\nkind: NetworkPolicy\n",
		accept:    "kind",
		wantSent:  []string{`default-run1 {"kind":"NetworkPolicy"}`},
		wantLines: []string{"document 1: not sent to the API server: the document is empty", "document 2: accepted by the API server"},
	}, {
		name:      "a mapping with a key JSON cannot hold is not sent and says so",
		manifests: "kind: NetworkPolicy\nspec: {1: x}\n",
		wantLines: []string{"document 1: not sent to the API server: it has no JSON form: json: unsupported type: map[interface {}]interface {}"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sent []string
			verdicts, err := serverVerdicts(tc.manifests, runName, func(namespace string, body []byte) error {
				sent = append(sent, namespace+" "+string(body))
				if tc.accept != "" && strings.Contains(string(body), tc.accept) {
					return nil
				}
				return errors.New("invalid")
			})
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, v := range verdicts {
				lines = append(lines, v.String())
			}
			if strings.Join(sent, "\n") != strings.Join(tc.wantSent, "\n") {
				t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(tc.wantSent, "\n"))
			}
			if strings.Join(lines, "\n") != strings.Join(tc.wantLines, "\n") {
				t.Errorf("verdicts:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.wantLines, "\n"))
			}
		})
	}
}

func TestServerVerdictsNotYAML(t *testing.T) {
	_, err := serverVerdicts("a: [\n", func(s string) string { return s }, func(string, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("err = %v, want a YAML error naming document 1", err)
	}
}
