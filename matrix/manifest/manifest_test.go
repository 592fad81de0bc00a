package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix/manifest"
)

// seed003Egress is seed 003's "egress Example": `ports` indented under a `to`
// peer, where the API has no such field. kubectl with strict decoding rejects
// it; a lenient decoder would drop `ports` and allow all egress.
const seed003Egress = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-dns-https
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: myapp
  policyTypes:
  - Egress
  egress:
  - to:
    - ports:
      - protocol: UDP
        port: 53
      - protocol: TCP
        port: 443
`

func TestPortsInsidePeerIsRejectedWithFileDocumentPathLineAndReason(t *testing.T) {
	_, err := manifest.ParsePolicies("seed003-egress.yaml", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n"+seed003Egress), "default")
	var merr *manifest.Error
	if !errors.As(err, &merr) || len(merr.Problems) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	p := merr.Problems[0]
	if p.File != "seed003-egress.yaml" || p.Document != 2 || p.Field != "spec.egress[0].to[0].ports" || p.Line != 18 {
		t.Errorf("problem = %+v", p)
	}
	want := `seed003-egress.yaml: document 2: spec.egress[0].to[0].ports (line 18): unknown field "ports": NetworkPolicyPeer has only ipBlock, namespaceSelector, podSelector`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
}

func TestUnquotedStringsStayStrings(t *testing.T) {
	ps, err := manifest.ParsePolicies("t.yaml", []byte(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: n
  namespace: y
  labels: {on: yes, off: no, version: 1.10, count: 12, t: true}
spec:
  podSelector: {matchLabels: {pod: n}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: ns, operator: In, values: [y, n, yes, null-ish, "true"]}]
`), "default")
	if err != nil {
		t.Fatal(err)
	}
	np := ps.Items[0]
	if np.Name != "n" || np.Namespace != "y" {
		t.Errorf("name/namespace = %q/%q", np.Namespace, np.Name)
	}
	wantLabels := map[string]string{"on": "yes", "off": "no", "version": "1.10", "count": "12", "t": "true"}
	for k, v := range wantLabels {
		if np.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, np.Labels[k], v)
		}
	}
	if np.Spec.PodSelector.MatchLabels["pod"] != "n" {
		t.Errorf("podSelector = %v", np.Spec.PodSelector)
	}
	got := strings.Join(np.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values, ",")
	if got != "y,n,yes,null-ish,true" {
		t.Errorf("values = %s", got)
	}
}

func TestModelStringsStayStrings(t *testing.T) {
	m, err := manifest.ParseModel("model.yaml", []byte(`
namespaces:
- name: y
  labels: {ns: y}
- name: "n"
pods:
- namespace: y
  name: no
  labels: {pod: on}
  ips: [10.244.1.10]
  containers:
  - name: serve
    ports: [{name: http, containerPort: 80, protocol: TCP}]
- {namespace: n, name: off, ips: ["10.244.1.11"]}
externals:
- {name: yes, ips: [192.0.2.10], ports: [{containerPort: 443}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Namespaces[0].Name != "y" || m.Namespaces[1].Name != "n" || m.Pods[0].Name != "no" || m.Pods[0].Labels["pod"] != "on" || m.Pods[1].Name != "off" || m.Externals[0].Name != "yes" {
		t.Errorf("model = %+v", m)
	}
}

func TestRejections(t *testing.T) {
	head := "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
	cases := []struct {
		name, yaml, field, reason string
	}{
		{"quoted port is a name, and a name needs a letter", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{port: \"80\"}]}]\n",
			"spec.ingress[0].ports[0].port", "must contain at least one letter"},
		{"invalid CIDR", head + "spec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]\n",
			"spec.ingress[0].from[0].ipBlock.cidr", "must be a valid CIDR"},
		{"CIDR with host bits (strict validation, on by default since 1.36)", head + "spec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.1/24}}]}]\n",
			"spec.ingress[0].from[0].ipBlock.cidr", "must not have bits set beyond the prefix length"},
		{"except outside the cidr", head + "spec:\n  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]\n",
			"spec.egress[0].to[0].ipBlock.except[0]", "must be a strict subset of `cidr`"},
		{"except equal to the cidr", head + "spec:\n  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/16]}}]}]\n",
			"spec.egress[0].to[0].ipBlock.except[0]", "must be a strict subset of `cidr`"},
		{"endPort without port", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{endPort: 90}]}]\n",
			"spec.ingress[0].ports[0].endPort", "may not be specified when `port` is not specified"},
		{"endPort with a named port", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]\n",
			"spec.ingress[0].ports[0].endPort", "may not be specified when `port` is non-numeric"},
		{"endPort below port", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{port: 100, endPort: 90}]}]\n",
			"spec.ingress[0].ports[0].endPort", "must be greater than or equal to `port`"},
		{"port out of range", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{port: 70000}]}]\n",
			"spec.ingress[0].ports[0].port", "must be between 1 and 65535"},
		{"unknown protocol", head + "spec:\n  podSelector: {}\n  ingress: [{ports: [{protocol: ICMP}]}]\n",
			"spec.ingress[0].ports[0].protocol", `Unsupported value: "ICMP"`},
		{"empty peer", head + "spec:\n  podSelector: {}\n  ingress: [{from: [{}]}]\n",
			"spec.ingress[0].from[0]", "must specify a peer"},
		{"ipBlock with a selector", head + "spec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n",
			"spec.ingress[0].from[0]", "may not specify both ipBlock and another peer"},
		{"unknown policy type", head + "spec:\n  podSelector: {}\n  policyTypes: [Ingres]\n",
			"spec.policyTypes[0]", `Unsupported value: "Ingres"`},
		{"three policy types", head + "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]\n",
			"spec.policyTypes", "may not specify more than two policyTypes"},
		{"bad selector operator", head + "spec:\n  podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}\n",
			"spec.podSelector.matchExpressions[0].operator", `not a valid selector operator`},
		{"In without values", head + "spec:\n  podSelector: {matchExpressions: [{key: a, operator: In}]}\n",
			"spec.podSelector.matchExpressions[0].values", "must be specified when `operator` is 'In' or 'NotIn'"},
		{"invalid name", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Not_Valid}\nspec: {podSelector: {}}\n",
			"metadata.name", "a lowercase RFC 1123 subdomain"},
		{"missing podSelector is fine, a misspelt one is not", head + "spec:\n  podselector: {}\n",
			"spec.podselector", `unknown field "podselector"`},
		{"a list where a mapping belongs", head + "spec:\n  podSelector: []\n",
			"spec.podSelector", "expected a mapping"},
		{"wrong apiVersion", "apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\n",
			"apiVersion", "NetworkPolicy must have apiVersion networking.k8s.io/v1"},
		{"no kind", "apiVersion: v1\nmetadata: {name: p}\n",
			"kind", "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.ParsePolicies("p.yaml", []byte(tc.yaml), "default")
			var merr *manifest.Error
			if !errors.As(err, &merr) {
				t.Fatalf("want a manifest.Error, got %v", err)
			}
			for _, p := range merr.Problems {
				if p.Field == tc.field && strings.Contains(p.Reason, tc.reason) && p.Line > 0 && p.Document == 1 {
					return
				}
			}
			t.Errorf("no problem at %s with %q (and a line) in:\n%v", tc.field, tc.reason, err)
		})
	}
}

func TestOtherKindsAreSkippedWithANote(t *testing.T) {
	ps, err := manifest.ParsePolicies("mixed.yaml", []byte(`
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: in-list}
  spec: {podSelector: {}}
- apiVersion: v1
  kind: Service
  metadata: {name: web}
`), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Items) != 1 || ps.Items[0].Name != "in-list" || ps.Items[0].Namespace != "default" {
		t.Errorf("items = %v", ps.Items)
	}
	if len(ps.Notes) != 2 || ps.Notes[0].String() != `mixed.yaml: document 1: skipped Namespace "dev" (v1): not a NetworkPolicy` {
		t.Errorf("notes = %v", ps.Notes)
	}
}

func TestDuplicatePolicyIsRejected(t *testing.T) {
	doc := "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}\n"
	_, err := manifest.ParsePolicies("dup.yaml", []byte(doc+"---\n"+doc), "default")
	if err == nil || !strings.Contains(err.Error(), "dup.yaml: document 2 (line 6): NetworkPolicy default/p is defined twice (first in dup.yaml document 1)") {
		t.Errorf("err = %v", err)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	_, err := manifest.ParsePolicies("bad.yaml", []byte("kind: NetworkPolicy\n  metadata: x\n"), "default")
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: document 1: yaml: line 2") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadPoliciesFromDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b}\nspec: {podSelector: {}}\n")
	write("sub/a.yml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: z}\nspec: {podSelector: {}}\n")
	write("notes.txt", "not a manifest")
	ps, err := manifest.LoadPolicies(dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Items) != 2 || ps.Items[0].Namespace+"/"+ps.Items[0].Name != "x/b" || ps.Items[1].Namespace+"/"+ps.Items[1].Name != "z/a" {
		t.Errorf("items = %v", ps.Items)
	}
	if _, err := manifest.LoadPolicies(filepath.Join(dir, "missing"), "x"); err == nil {
		t.Error("loading a missing path succeeded")
	}
}

func TestModelRejections(t *testing.T) {
	_, err := manifest.ParseModel("m.yaml", []byte(`
namespaces: [{name: x}]
pods:
- {namespace: q, name: a, ips: [10.0.0.1]}
- {namespace: x, name: b, ips: [not-an-ip]}
- {namespace: x, name: c, ips: [10.0.0.3], containers: [{name: s, ports: [{containerPort: 80, protocol: ICMP}]}]}
- {namespace: x, name: d}
externals: [{name: e, ips: [192.0.2.1], colour: red}]
`))
	var merr *manifest.Error
	if !errors.As(err, &merr) {
		t.Fatalf("err = %v", err)
	}
	text := err.Error()
	for _, want := range []string{
		`m.yaml: document 1: externals[0].colour (line 8): unknown field "colour"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	_, err = manifest.ParseModel("m.yaml", []byte(`
namespaces: [{name: x}]
pods:
- {namespace: q, name: a, ips: [10.0.0.1]}
- {namespace: x, name: b, ips: [not-an-ip]}
- {namespace: x, name: c, ips: [10.0.0.3], containers: [{name: s, ports: [{containerPort: 80, protocol: ICMP}]}]}
- {namespace: x, name: d}
`))
	text = err.Error()
	for _, want := range []string{
		`pods[0].namespace (line 4): Not found: "q"`,
		`pods[1].ips[0] (line 5): Invalid value: "not-an-ip": not an IP address`,
		`pods[2].containers[0].ports[0].protocol (line 6): Unsupported value: "ICMP"`,
		`pods[3].ips (line 7): Required value: a pod needs an IP to be probed`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}
