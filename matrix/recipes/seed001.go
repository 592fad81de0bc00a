package recipes

import "github.com/netpolcheck/netpolcheck/matrix"

// seed001 is the walkthrough of seed 001: a server in test-a, a client in
// test-b, default-deny ingress, an allow for the client, then default-deny
// egress and an allow on the client's side.
func seed001() []Recipe {
	const denyIngress = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-a-default-deny-ingress
  namespace: test-a
spec:
  podSelector: {}   # Empty will select all pods in the namespace
  policyTypes:
  - Ingress
`
	return []Recipe{{
		ID:     "seed001/walkthrough",
		Title:  "default deny ingress, allow one client, then default deny egress and allow it back",
		Source: "seed 001 (NetworkPolicy example walkthrough)",
		Namespaces: []matrix.Namespace{
			namespace("test-a", "team=ateam"),
			namespace("test-b", "team=bteam"),
		},
		Pods: []matrix.Pod{
			pod("test-a", "server-pod", "nginx", "app=test-server", "80"),
			pod("test-b", "client-pod", "busybox", "app=test-client"),
			// Not in the document: a second pod in the client's namespace shows
			// that namespaceSelector and podSelector in one peer are ANDed.
			pod("test-b", "bystander", "busybox", "app=other"),
		},
		Labels: []string{"Egress"},
		Steps: []Step{
			{
				Name:   "no policy",
				Expect: []Outcome{allow("test-b/client-pod", "test-a/server-pod", "80", "the client pod should access the server pod normally")},
			},
			{
				Name:   "default deny ingress in test-a",
				Apply:  denyIngress,
				Expect: []Outcome{deny("test-b/client-pod", "test-a/server-pod", "80", "Now the client pod can't access the server pod anymore")},
			},
			{
				Name: "allow the client (namespace team=bteam AND pod app=test-client) on TCP 80",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-client-allow
  namespace: test-a
spec:
  podSelector:
    matchLabels:
      app: test-server   # Select the server pod
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:  # Select the client pod namespace
        matchLabels:
          team: bteam
      podSelector:       # Select the client pod , it must achieve both conditions
        matchLabels:
          app: test-client
    ports:
    - protocol: TCP
      port: 80  # The port that the client pod will try to access
`,
				Expect: []Outcome{
					allow("test-b/client-pod", "test-a/server-pod", "80", "Now the client pod can access the server pod again"),
					deny("test-b/bystander", "test-a/server-pod", "80", "both conditions must hold: the bystander is in test-b but not app=test-client"),
				},
			},
			{
				Name:   "re-create the default deny after the allow: the last-created policy does not win",
				Delete: []string{"test-a/test-a-default-deny-ingress"},
				Apply:  denyIngress,
				Expect: []Outcome{allow("test-b/client-pod", "test-a/server-pod", "80", "the document: 'the pod will be isolated by the NetworkPolicy that was created last'")},
				Correction: "Seed 001 says NetworkPolicies override each other and the last-created one wins. They do not: " +
					"policies are additive, the allowed set is the union of every policy selecting the pod, and creation order " +
					"does not matter. The deny-all policy, re-created after the allow, still lets the client in.",
			},
			{
				Name: "default deny egress in test-b",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-b-default-deny-egress
  namespace: test-b
spec:
  podSelector: {}
  policyTypes:
  - Egress
`,
				Expect: []Outcome{deny("test-b/client-pod", "test-a/server-pod", "80", "an egress rule that blocks the client again from reaching the server")},
			},
			{
				Name: "allow the client's egress to namespace team=ateam on TCP 80",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-client-allow-egress
  namespace: test-b
spec:
  podSelector:
    matchLabels:
      app: test-client
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:  # to any pod in this namespace
        matchLabels:
          team: ateam
    ports:
    - protocol: TCP
      port: 80
`,
				Expect: []Outcome{
					allow("test-b/client-pod", "test-a/server-pod", "80", "egress rules that allow the client pod to access the server pod"),
					deny("test-b/bystander", "test-a/server-pod", "80", "the bystander is not app=test-client: its egress stays denied"),
				},
			},
		},
	}}
}
