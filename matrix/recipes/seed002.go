package recipes

import "github.com/netpolcheck/netpolcheck/matrix"

// seed002 is the "Demo Network Policies" walkthrough: default connectivity,
// default-deny egress and ingress in default, then selective allows.
//
// The document tests with ping (ICMP), which the NetworkPolicy API does not
// govern; the recipe asserts the same intent on TCP and UDP connections, and
// the suites probe ICMP as an informational column only.
func seed002() []Recipe {
	const allowedICMP = "ICMP is not governed by the API; the document's ping checks are asserted on TCP/UDP here"
	return []Recipe{{
		ID:     "seed002/walkthrough",
		Title:  "default deny egress and ingress in default, then allow pod1 to NGINX on TCP 80",
		Source: "seed 002 (Demo Network Policies)",
		Namespaces: []matrix.Namespace{
			namespace("default", ""),
			namespace("kube-system", ""),
		},
		Pods: []matrix.Pod{
			// pod1 must carry app=centos for the document's final outcome to
			// hold: step 4.2 admits ingress to the NGINX pod only from app=centos.
			pod("default", "pod1", "container1", "app=centos"),
			pod("default", "pod2", "nginx", "app=nginx", "80", "8080"),
			pod("kube-system", "kube-dns", "coredns", "k8s-app=kube-dns", "53/UDP", "53/TCP"),
			pod("kube-system", "test-client", "centos", "run=test-client"),
		},
		Externals: []matrix.External{external("www.google.com", "192.0.2.10", "80", "443")},
		Labels:    []string{"Egress"},
		Steps: []Step{
			{
				Name: "default connectivity",
				Expect: []Outcome{
					allow("default/pod1", "www.google.com", "80", "1.1 ping www.google.com: 4 received, 0% packet loss ("+allowedICMP+")"),
					allow("default/pod1", "kube-system/kube-dns", "53/UDP", "1.2 ping a kube-system pod IP: you should receive replies"),
					allow("kube-system/test-client", "default/pod2", "80", "by default all traffic flows freely"),
				},
			},
			{
				Name: "deny-egress.yaml exactly as the document prints it (indentation lost)",
				Apply: `
# deny-egress.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
name: default-deny-egress
spec:
podSelector: {} # selects all Pods in default
policyTypes:
- Egress
`,
				Rejected: `unknown field "name"`,
				Expect:   []Outcome{allow("default/pod1", "www.google.com", "80", "nothing changed: the manifest was rejected")},
				Correction: "The document's deny-egress.yaml lost its indentation: name, podSelector and policyTypes sit at the top level. " +
					"Such a manifest must be rejected with the field path, never reinterpreted.",
			},
			{
				Name: "2. default deny egress in default",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {} # selects all Pods in default
  policyTypes:
  - Egress
`,
				Expect: []Outcome{
					deny("default/pod1", "www.google.com", "80", "2.1 ping www.google.com should time out ("+allowedICMP+")"),
					deny("default/pod1", "kube-system/kube-dns", "53/UDP", "2.1 ping a cross-namespace pod should time out"),
					allow("kube-system/test-client", "default/pod2", "80", "egress of default does not restrict ingress"),
				},
			},
			{
				Name: "3. default deny ingress in default",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
`,
				Expect: []Outcome{deny("kube-system/test-client", "default/pod2", "80", "curl from a pod in kube-system to pod2: you should see a timeout")},
			},
			{
				Name: "4.1 and 4.2: permit egress to app=nginx and ingress from app=centos on TCP 80",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - podSelector:
        matchLabels:
          app: nginx
    ports:
    - protocol: TCP
      port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: centos
    ports:
    - protocol: TCP
      port: 80
`,
				Expect: []Outcome{
					allow("default/pod1", "default/pod2", "80", "5. Allowed: from pod1 to NGINX on port 80: you should see the NGINX welcome page"),
					deny("default/pod1", "default/pod2", "8080", "5. Blocked: from pod1 to NGINX on port 8080: connections on other ports will time out"),
					deny("kube-system/test-client", "default/pod2", "80", "4.2 admits only app=centos pods of default"),
					deny("default/pod1", "www.google.com", "80", "egress is limited to app=nginx on TCP 80"),
				},
			},
		},
	}}
}
