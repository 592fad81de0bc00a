package recipes

import "github.com/netpolcheck/netpolcheck/matrix"

// seed003 holds the examples of "What is a Kubernetes Network Policy?", each
// deployed on its own into the same small application.
func seed003() []Recipe {
	namespaces := []matrix.Namespace{namespace("default", ""), namespace("kube-system", "")}
	pods := []matrix.Pod{
		pod("default", "nginx", "nginx", "app=nginx", "80"),
		pod("default", "frontend", "frontend", "role=frontend"),
		pod("default", "backend", "backend", "app=backend", "80", "8080"),
		pod("default", "myapp", "myapp", "app=myapp"),
		pod("default", "other", "other", ""),
		pod("kube-system", "kube-dns", "coredns", "k8s-app=kube-dns", "53/UDP", "53/TCP"),
	}
	externals := []matrix.External{external("internet", "192.0.2.10", "443", "53/UDP", "80")}
	recipe := func(id, title string, labels []string, steps ...Step) Recipe {
		return Recipe{ID: "seed003/" + id, Title: title, Source: "seed 003 (What is a Kubernetes Network Policy?)",
			Namespaces: namespaces, Pods: pods, Externals: externals, Labels: labels, Steps: steps}
	}
	return []Recipe{
		recipe("deny-all-ingress", "Basic Example: Deny All Ingress", nil, Step{
			Name: "deny-all-ingress in default",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all-ingress
  namespace: default
spec:
  podSelector: {}
  policyTypes:
  - Ingress
`,
			Expect: []Outcome{
				deny("default/frontend", "default/nginx", "80", "This blocks all incoming traffic to Pods in the default namespace"),
				deny("kube-system/kube-dns", "default/backend", "80", "blocks all incoming traffic"),
				deny("internet", "default/nginx", "80", "blocks all incoming traffic"),
				allow("default/nginx", "kube-system/kube-dns", "53/UDP", "egress is not restricted"),
			},
		}),
		recipe("allow-nginx-from-frontend", "Allow Ingress from Specific Pod", nil, Step{
			Name: "allow-nginx-from-frontend",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-nginx-from-frontend
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: nginx
  ingress:
  - from:
    - podSelector:
        matchLabels:
          role: frontend
  policyTypes:
  - Ingress
`,
			Expect: []Outcome{
				allow("default/frontend", "default/nginx", "80", "Only Pods with label role=frontend can access Pods labeled app=nginx"),
				deny("default/other", "default/nginx", "80", "Only Pods with label role=frontend can access"),
				deny("kube-system/kube-dns", "default/nginx", "80", "podSelector alone selects pods of the policy's namespace only"),
				allow("default/other", "default/backend", "80", "other pods are not isolated"),
			},
		}),
		recipe("allow-dns-https-egress", "Allow Egress to DNS and HTTPS", []string{"Egress"}, Step{
			Name: "allow-dns-https-egress",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-dns-https-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: myapp
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector: {}
    ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 443
`,
			Expect: []Outcome{
				allow("default/myapp", "kube-system/kube-dns", "53/UDP", "Allows DNS (UDP 53) traffic from myapp Pods"),
				deny("default/myapp", "kube-system/kube-dns", "53/TCP", "only UDP 53 and TCP 443 are listed"),
				deny("default/myapp", "default/nginx", "80", "only UDP 53 and TCP 443 are allowed"),
				deny("default/myapp", "internet", "443", "the document says HTTPS (TCP 443) is allowed"),
				allow("default/other", "internet", "443", "other pods are not isolated"),
			},
			Correction: "The document says this allows HTTPS (TCP 443) from myapp pods. Its only peer is namespaceSelector: {}, " +
				"which selects every pod in every namespace and nothing outside the cluster, so HTTPS to external hosts is denied; " +
				"only HTTPS to pods is allowed.",
		}),
		recipe("allow-frontend-to-backend", "Ingress Example: Allow traffic from specific Pods", nil, Step{
			Name: "allow-frontend-to-backend",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend-to-backend
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: backend
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 80
`,
			Expect: []Outcome{
				allow("default/frontend", "default/backend", "80", "This allows Pods with role=frontend to access app=backend Pods on TCP port 80"),
				deny("default/frontend", "default/backend", "8080", "on TCP port 80 only"),
				deny("default/other", "default/backend", "80", "only role=frontend"),
			},
		}),
		recipe("allow-egress-dns-https", "egress Example: Allow DNS and HTTPS traffic (ports inside a peer)", []string{"Egress"}, Step{
			Name: "allow-egress-dns-https as printed: ports indented under to",
			Apply: `
apiVersion: networking.k8s.io/v1
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
`,
			Rejected: `spec.egress[0].to[0].ports`,
			Expect:   []Outcome{allow("default/myapp", "default/nginx", "80", "nothing changed: the manifest was rejected")},
			Correction: "The document says this allows DNS and HTTPS from myapp pods. Its `ports` sits inside a `to` peer, where " +
				"NetworkPolicyPeer has no such field: the API server rejects it under strict field validation, and a lenient " +
				"decoder that dropped the field would be left with an empty peer, which validation rejects too ('must specify a " +
				"peer'). It must be rejected with a clear error naming spec.egress[0].to[0].ports.",
		}),
	}
}
