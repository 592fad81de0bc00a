package recipes

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// seed004 holds the recipes of the Chinese-language guide (sections 2 to 5,
// after ahmetb/kubernetes-network-policy-recipes). Its `kubectl run test-$RANDOM`
// clients become named client pods. Its Services are part of the recipes,
// and the outcomes it shows through them (`wget http://web`, `web.default`,
// a NodePort from outside) say so with Via; their To and Port are the
// backend pod and its port, where policies apply (after service
// translation).
func seed004() []Recipe {
	const source = "seed 004 (网络策略 / NetworkPolicy guide)"
	var out []Recipe
	add := func(r Recipe) {
		r.ID = "seed004/" + r.ID
		r.Source = source + ", section " + r.Source
		out = append(out, r)
	}

	add(Recipe{
		ID: "2-sample", Source: "2 (NetworkPolicy resource sample)",
		Title: "role=db: ingress from ipBlock (with except), project=myproject namespaces and role=frontend on TCP 6379; egress to 10.0.0.0/24 on TCP 5978",
		Namespaces: []matrix.Namespace{
			namespace("default", ""),
			namespace("myproject", "project=myproject"),
			namespace("elsewhere", ""),
		},
		Pods: []matrix.Pod{
			pod("default", "db", "redis", "role=db", "6379", "80"),
			pod("default", "frontend", "frontend", "role=frontend"),
			pod("default", "backend", "backend", "role=backend"),
			pod("myproject", "client", "client", ""),
			pod("elsewhere", "client", "client", ""),
		},
		Externals: []matrix.External{
			external("in-block", "172.17.0.10", "80"),
			external("in-except", "172.17.1.10", "80"),
			external("egress-target", "10.0.0.10", "5978", "80"),
		},
		Labels: []string{"Egress", "IPBlock"},
		Steps: []Step{{
			Name: "network-policy-sample",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: network-policy-sample
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`,
			Expect: []Outcome{
				allow("default/frontend", "default/db", "6379", "pods of default with role=frontend may connect to TCP 6379"),
				allow("myproject/client", "default/db", "6379", "every pod of a namespace labelled project=myproject may connect"),
				allow("in-block", "default/db", "6379", "172.17.0.0–172.17.0.255 and 172.17.2.0–172.17.255.255 may connect"),
				deny("in-except", "default/db", "6379", "except 172.17.1.0/24"),
				deny("default/backend", "default/db", "6379", "role=backend is not listed"),
				deny("elsewhere/client", "default/db", "6379", "namespace not labelled project=myproject"),
				deny("default/frontend", "default/db", "80", "TCP 6379 only"),
				allow("default/db", "egress-target", "5978", "egress to 10.0.0.0/24 on TCP 5978"),
				deny("default/db", "egress-target", "80", "egress on TCP 5978 only"),
				deny("default/db", "in-block", "80", "egress only to 10.0.0.0/24"),
			},
		}},
	})

	add(Recipe{
		ID: "3-or-peers", Source: "3 (behaviour of to and from selectors)",
		Title: "namespaceSelector and podSelector as two peers: OR",
		Namespaces: []matrix.Namespace{
			namespace("default", ""),
			namespace("alice", "user=alice"),
			namespace("bob", "user=bob"),
		},
		Pods: []matrix.Pod{
			pod("default", "server", "server", "app=server", "80"),
			pod("default", "client", "client", "role=client"),
			pod("default", "other", "other", ""),
			pod("alice", "any", "any", ""),
			pod("bob", "client", "client", "role=client"),
		},
		Steps: []Step{{
			Name: "from user=alice namespaces, or role=client pods of default",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: or-peers
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: server
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
    - podSelector:
        matchLabels:
          role: client
`,
			Expect: []Outcome{
				allow("alice/any", "default/server", "80", "namespaceSelector: every pod of namespaces labelled user=alice"),
				allow("default/client", "default/server", "80", "podSelector: role=client pods in the policy's namespace"),
				deny("bob/client", "default/server", "80", "podSelector alone does not reach into other namespaces"),
				deny("default/other", "default/server", "80", "neither peer matches"),
			},
		}},
	})

	// Section 4: default policies, each on its own.
	defaults := func(id, title string, labels []string, policy string, expect ...Outcome) {
		add(Recipe{
			ID: id, Source: id, Title: title, Labels: labels,
			Namespaces: []matrix.Namespace{namespace("default", ""), namespace("other", "")},
			Pods: []matrix.Pod{
				pod("default", "web", "nginx", "app=web", "80"),
				pod("default", "client", "client", ""),
				pod("other", "server", "nginx", "app=server", "80"),
				pod("other", "client", "client", ""),
			},
			Externals: []matrix.External{external("internet", "192.0.2.10", "80")},
			Steps:     []Step{{Name: title, Apply: policy, Expect: expect}},
		})
	}
	defaults("4.1", "deny all ingress", nil, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  ingress: []  # 可省略
`,
		deny("default/client", "default/web", "80", "拒绝所有入站流量: all ingress to pods of default is denied"),
		deny("other/client", "default/web", "80", "all ingress denied"),
		deny("internet", "default/web", "80", "all ingress denied"),
		allow("default/client", "other/server", "80", "egress is not restricted"),
	)
	defaults("4.2", "allow all ingress", nil, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-ingress
spec:
  podSelector: {}
  ingress:
  - {}
  policyTypes:
  - Ingress
`,
		allow("default/client", "default/web", "80", "允许所有入站流量: all ingress allowed"),
		allow("other/client", "default/web", "80", "all ingress allowed"),
		allow("internet", "default/web", "80", "all ingress allowed, external clients too"),
	)
	defaults("4.3", "deny all egress", []string{"Egress"}, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
`,
		deny("default/client", "other/server", "80", "拒绝所有出站流量: all egress of default is denied"),
		deny("default/client", "default/web", "80", "all egress denied, within the namespace too"),
		deny("default/web", "internet", "80", "all egress denied"),
		allow("other/client", "default/web", "80", "ingress is not restricted"),
	)
	defaults("4.4", "allow all egress", []string{"Egress"}, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-egress
spec:
  podSelector: {}
  egress:
  - {}
  policyTypes:
  - Egress
`,
		allow("default/client", "other/server", "80", "允许所有出站流量: all egress allowed"),
		allow("default/web", "internet", "80", "all egress allowed"),
	)
	defaults("4.5", "deny all ingress and all egress", []string{"Egress"}, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
`,
		deny("default/client", "default/web", "80", "拒绝所有入口和所有出站流量"),
		deny("other/client", "default/web", "80", "all ingress denied"),
		deny("default/client", "other/server", "80", "all egress denied"),
		allow("other/client", "other/server", "80", "other namespaces are unaffected"),
	)

	web := pod("default", "web", "nginx", "app=web", "80")
	client := pod("default", "client", "alpine", "")
	webService := exposed("default", "web", "app=web", 80, "", "kubectl run web --image=nginx --labels=app=web --expose --port=80")

	add(Recipe{
		ID: "5.1", Source: "5.1", Title: "DENY all traffic to an application",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods:       []matrix.Pod{web, client},
		Services:   []Service{webService},
		Steps: []Step{
			{Name: "before the policy", Expect: []Outcome{
				allow("default/client", "default/web", "80", "wget -qO- http://web: <!DOCTYPE html>").through("default/web", 80, ByName),
			}},
			{
				Name: "web-deny-all",
				Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
  ingress: []   # no rules specified, it causes incoming traffic to be dropped
`,
				Expect: []Outcome{deny("default/client", "default/web", "80", "wget: download timed out").through("default/web", 80, ByName)},
			},
		},
	})

	add(Recipe{
		ID: "5.2", Source: "5.2", Title: "LIMIT traffic to an application",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods: []matrix.Pod{
			pod("default", "web", "nginx", "app=bookstore,role=api", "80"),
			client,
			pod("default", "bookstore-frontend", "alpine", "app=bookstore,role=frontend"),
		},
		Services: []Service{exposed("default", "web", "app=bookstore,role=api", 80, "",
			`kubectl run web --image=nginx --labels="app=bookstore,role=api" --expose --port=80`)},
		Steps: []Step{{
			Name: "api-allow",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: api
  ingress:
  - from:
      - podSelector:
          matchLabels:
            app: bookstore   # only the pod tagged with bookstore can access it
`,
			Expect: []Outcome{
				deny("default/client", "default/web", "80", "未指定正确的标签，无法访问: wget: download timed out").through("default/web", 80, ByName),
				allow("default/bookstore-frontend", "default/web", "80", "标签正确，可访问: <!DOCTYPE html>").through("default/web", 80, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.3", Source: "5.3", Title: "ALLOW all traffic to an application (a deny-all and an allow-all together)",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("other", "")},
		Pods:       []matrix.Pod{web, client, pod("other", "client", "alpine", "")},
		Externals:  []matrix.External{external("internet", "192.0.2.10", "80")},
		Services:   []Service{webService},
		Steps: []Step{{
			Name: "web-deny-all and web-allow-all",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
  ingress: []
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}  # empty, allow all traffic
`,
			Expect: []Outcome{
				allow("default/client", "default/web", "80", "allow的权限大于deny: <!DOCTYPE html>").through("default/web", 80, ByName),
				allow("other/client", "default/web", "80", "allow all traffic to it from its namespace and other namespaces"),
				allow("internet", "default/web", "80", "an empty ingress rule allows every source, outside the cluster too"),
			},
			Correction: "The document adds that an empty ingress rule {} equals from: [{podSelector: {}, namespaceSelector: {}}]. " +
				"It does not quite: {} also admits sources outside the cluster (any IP), while that peer selects only pods.",
		}},
	})

	add(Recipe{
		ID: "5.4", Source: "5.4", Title: "DENY all non-whitelisted traffic to a namespace",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("kube-system", "")},
		Pods:       []matrix.Pod{pod("default", "web", "nginx", "run=web", "80"), client, pod("kube-system", "client", "alpine", "")},
		Services:   []Service{exposed("default", "web", "run=web", 80, "", "kubectl run web --image=nginx --expose --port=80")},
		Steps: []Step{{
			Name: "default-deny-all (ingress)",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all
  namespace: default
spec:
  podSelector: {}   # empty, it will match all the pods
  ingress: []       # no rules specified, it causes incoming traffic to be dropped
`,
			Expect: []Outcome{
				deny("default/client", "default/web", "80", "same namespace: wget: download timed out").through("default/web", 80, ByName),
				deny("kube-system/client", "default/web", "80", "across namespace: wget http://web.default: download timed out").through("default/web", 80, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.5-deny-other-namespaces", Source: "5.5 (first)", Title: "DENY all traffic from other namespaces",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("foo", "")},
		Pods:       []matrix.Pod{web, client, pod("foo", "client", "alpine", "")},
		Services:   []Service{webService},
		Steps: []Step{{
			Name: "deny-from-other-namespaces",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: default
  name: deny-from-other-namespaces
spec:
  podSelector:
    matchLabels:   # empty, select all pods in 'default' namespace
  ingress:
  - from:
    - podSelector: {}   # empty, select all pods in 'default' namespace
`,
			Expect: []Outcome{
				deny("foo/client", "default/web", "80", "非default命名空间，无法访问: wget http://web.default: download timed out").through("default/web", 80, ByName),
				allow("default/client", "default/web", "80", "default命名空间，可正常访问: wget http://web").through("default/web", 80, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.5-allow-all-namespaces", Source: "5.5 (second)", Title: "ALLOW traffic to an application from all namespaces",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("bar", "")},
		Pods:       []matrix.Pod{web, pod("bar", "client", "alpine", "")},
		Externals:  []matrix.External{external("internet", "192.0.2.10", "80")},
		Services:   []Service{webService},
		Steps: []Step{{
			Name: "web-allow-all-namespaces",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: default
  name: web-allow-all-namespaces
spec:
  podSelector:
    matchLabels:
      app: web    # apply the policy only to the pods that are labeled by app=web
  ingress:
  - from:
    - namespaceSelector: {}  # empty, allow all namespaces to access
`,
			Expect: []Outcome{
				allow("bar/client", "default/web", "80", "wget http://web.default: <!DOCTYPE html>").through("default/web", 80, ByName),
				deny("internet", "default/web", "80", "namespaceSelector: {} selects pods of every namespace, nothing outside the cluster"),
			},
		}},
	})

	add(Recipe{
		ID: "5.6", Source: "5.6", Title: "ALLOW all traffic from a namespace",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("dev", "purpose=develop"), namespace("prod", "purpose=production")},
		Pods:       []matrix.Pod{web, pod("dev", "client", "alpine", ""), pod("prod", "client", "alpine", "")},
		Services:   []Service{webService},
		Steps: []Step{{
			Name: "web-allow-prod",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-prod
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          purpose: production   # only pods in namespace that has label purpose=production will be allowed
`,
			Expect: []Outcome{
				deny("dev/client", "default/web", "80", "--namespace=dev: wget http://web.default: download timed out").through("default/web", 80, ByName),
				allow("prod/client", "default/web", "80", "--namespace=prod: wget http://web.default: <!DOCTYPE html>").through("default/web", 80, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.7", Source: "5.7", Title: "ALLOW traffic from some pods in another namespace",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("other", "team=operations")},
		Pods: []matrix.Pod{
			web,
			pod("other", "client", "alpine", ""),
			pod("default", "monitoring", "alpine", "type=monitoring"),
			pod("other", "monitoring", "alpine", "type=monitoring"),
		},
		Services: []Service{webService},
		Steps: []Step{{
			Name: "web-allow-all-ns-monitoring",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all-ns-monitoring
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
    - from:
      - namespaceSelector:
          matchLabels:
            team: operations  # chooses all pods in namespaces labelled with team=operations
        podSelector:
          matchLabels:
            type: monitoring  # chooses pods with type=monitoring
`,
			Expect: []Outcome{
				deny("other/client", "default/web", "80", "仅namespace满足，不能访问: wget http://web.default: download timed out").through("default/web", 80, ByName),
				deny("default/monitoring", "default/web", "80", "仅label满足，不能访问: download timed out").through("default/web", 80, ByName),
				allow("other/monitoring", "default/web", "80", "namespace和label都满足，可以访问: <!DOCTYPE html>").through("default/web", 80, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.8", Source: "5.8", Title: "ALLOW traffic from external clients",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods:       []matrix.Pod{web, client},
		Externals:  []matrix.External{external("internet-client", "192.0.2.20")},
		Services: []Service{exposed("default", "web", "app=web", 80, corev1.ServiceTypeNodePort,
			"kubectl run web --image=nginx --labels=app=web --port 80; kubectl expose pod/web --type=NodePort")},
		Steps: []Step{{
			Name: "web-allow-external",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-external
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
`,
			Expect: []Outcome{
				allow("internet-client", "default/web", "80", "wget -qO- http://192.168.3.103:31261 (NodePort): <!DOCTYPE html>").through("default/web", 80, ByNodePort),
				allow("default/client", "default/web", "80", "ingress: [{}] admits every source"),
			},
		}},
	})

	add(Recipe{
		ID: "5.9", Source: "5.9", Title: "ALLOW traffic only to a port of an application",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods: []matrix.Pod{
			pod("default", "web", "app-on-two-ports", "app=web", "8000", "metrics=5000"),
			client,
			pod("default", "monitoring", "alpine", "role=monitoring"),
		},
		Services: []Service{{Namespace: "default", Name: "web", Selector: map[string]string{"app": "web"},
			Doc: "kubectl create service clusterip web --tcp 8001:8000 --tcp 5001:5000",
			Ports: []corev1.ServicePort{
				{Name: "8001-8000", Port: 8001, TargetPort: intstr.FromInt32(8000), Protocol: corev1.ProtocolTCP},
				{Name: "5001-5000", Port: 5001, TargetPort: intstr.FromInt32(5000), Protocol: corev1.ProtocolTCP},
			}}},
		Steps: []Step{{
			Name: "api-allow-5000",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-5000
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 5000
    from:
    - podSelector:
        matchLabels:
          role: monitoring
`,
			Expect: []Outcome{
				deny("default/client", "default/web", "5000", "未指定label，无法访问: wget http://web:5001/metrics: download timed out").through("default/web", 5001, ByName),
				deny("default/monitoring", "default/web", "8000", "wget http://web:8001: download timed out").through("default/web", 8001, ByName),
				allow("default/monitoring", "default/web", "5000", "wget http://web:5001/metrics: http.requests=1").through("default/web", 5001, ByName),
			},
		}},
	})

	add(Recipe{
		ID: "5.9-named-port", Source: "5.9 (\"a port may be either a numerical or named port\")",
		Title:      "ALLOW traffic only to a named port of an application",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods: []matrix.Pod{
			pod("default", "web", "app-on-two-ports", "app=web", "8000", "metrics=5000"),
			pod("default", "monitoring", "alpine", "role=monitoring"),
		},
		Labels: []string{"NamedPort"},
		Steps: []Step{{
			Name: "api-allow-metrics by port name",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-metrics
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: metrics
    from:
    - podSelector:
        matchLabels:
          role: monitoring
`,
			Expect: []Outcome{
				deny("default/monitoring", "default/web", "8000", "only the named port"),
				allow("default/monitoring", "default/web", "5000", "the name metrics resolves to 5000 on the destination pod"),
			},
		}},
	})

	add(Recipe{
		ID: "5.10", Source: "5.10", Title: "ALLOW traffic from apps using multiple selectors",
		Namespaces: []matrix.Namespace{namespace("default", "")},
		Pods: []matrix.Pod{
			pod("default", "db", "redis", "app=bookstore,role=db", "6379"),
			pod("default", "inventory-web", "alpine", "app=inventory,role=web"),
			pod("default", "bookstore-search", "alpine", "app=bookstore,role=search"),
			pod("default", "bookstore-api", "alpine", "app=bookstore,role=api"),
			pod("default", "other", "alpine", "app=other"),
		},
		Services: []Service{exposed("default", "db", "app=bookstore,role=db", 6379, "",
			`kubectl run db --image=redis --labels="app=bookstore,role=db" --expose --port=6379`)},
		Steps: []Step{{
			Name: "redis-allow-services",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: redis-allow-services
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: bookstore
          role: search
    - podSelector:
        matchLabels:
          app: bookstore
          role: api
    - podSelector:
        matchLabels:
          app: inventory
          role: web
`,
			Expect: []Outcome{
				allow("default/inventory-web", "default/db", "6379", "label 满足条件: nc -v -w 2 db 6379: open").through("default/db", 6379, ByName),
				allow("default/bookstore-search", "default/db", "6379", "listed selector"),
				allow("default/bookstore-api", "default/db", "6379", "listed selector"),
				deny("default/other", "default/db", "6379", "label 不满足: nc -v -w 2 db 6379: Operation timed out").through("default/db", 6379, ByName),
			},
		}},
	})

	dnsPod := pod("kube-system", "kube-dns", "coredns", "k8s-app=kube-dns", "53/UDP", "53/TCP")
	add(Recipe{
		ID: "5.11", Source: "5.11", Title: "DENY egress traffic from an application, then allow DNS",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("kube-system", "")},
		Pods:       []matrix.Pod{web, pod("default", "foo", "alpine", "app=foo"), dnsPod},
		Externals:  []matrix.External{external("google.com", "192.0.2.10", "80", "53/UDP")},
		Services:   []Service{webService},
		Labels:     []string{"Egress"},
		Steps: []Step{
			{
				Name: "foo-deny-egress",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress: []
`,
				Expect: []Outcome{
					deny("default/foo", "kube-system/kube-dns", "53/UDP", "wget http://web: bad address 'web' (DNS is blocked)").through("default/web", 0, Lookup),
					deny("default/foo", "default/web", "80", "no egress at all"),
					deny("default/foo", "google.com", "80", "ping 192.168.3.1: 100% packet loss"),
				},
			},
			{
				Name: "allow DNS (TCP and UDP 53) to anywhere",
				Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: TCP
    - port: 53
      protocol: UDP
`,
				Expect: []Outcome{
					allow("default/foo", "kube-system/kube-dns", "53/UDP", "可正常解析域名: names resolve").through("default/web", 0, Lookup),
					allow("default/foo", "kube-system/kube-dns", "53/TCP", "TCP 53 allowed"),
					deny("default/foo", "default/web", "80", "wget http://web: download timed out").through("default/web", 80, ByName),
					deny("default/foo", "google.com", "80", "wget http://google.com: download timed out"),
					allow("default/foo", "google.com", "53/UDP", "port 53 to any destination"),
				},
			},
		},
	})

	add(Recipe{
		ID: "5.12", Source: "5.12", Title: "DENY all non-whitelisted traffic from a namespace",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("kube-system", ""), namespace("other", "")},
		Pods:       []matrix.Pod{web, client, dnsPod, pod("other", "client", "alpine", "")},
		// Not in the document: the recipe exposes its web pod as the other
		// recipes do, so that a name lookup shows DNS resolution dropped.
		Services: []Service{webService},
		Labels:   []string{"Egress"},
		Steps: []Step{{
			Name: "default-deny-all-egress",
			Apply: `
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all-egress
  namespace: default
spec:
  policyTypes:
  - Egress
  podSelector: {}     # empty, it will apply the policy to all pods of default namespace
  egress: []          # empty array, it causes all traffic (including DNS resolution) to be dropped
`,
			Expect: []Outcome{
				deny("default/client", "kube-system/kube-dns", "53/UDP", "all traffic (including DNS resolution) to be dropped").through("default/web", 0, Lookup),
				deny("default/client", "default/web", "80", "all outgoing traffic of the namespace is blocked"),
				allow("other/client", "default/web", "80", "ingress to default is not restricted"),
			},
		}},
	})

	add(Recipe{
		ID: "5.13", Source: "5.13", Title: "DENY external egress traffic",
		Namespaces: []matrix.Namespace{namespace("default", ""), namespace("kube-system", "")},
		Pods:       []matrix.Pod{web, pod("default", "foo", "alpine", "app=foo"), dnsPod},
		Externals:  []matrix.External{external("google.com", "192.0.2.10", "80", "53/UDP")},
		Services:   []Service{webService},
		Labels:     []string{"Egress"},
		Steps: []Step{{
			Name: "foo-deny-external-egress",
			Apply: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-external-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  - to:
    - namespaceSelector: {}  # empty, it will allow all pods in all namespaces
`,
			Expect: []Outcome{
				allow("default/foo", "default/web", "80", "outbound traffic to pods in the cluster is allowed: wget http://web: <!DOCTYPE html>").through("default/web", 80, ByName),
				allow("default/foo", "kube-system/kube-dns", "53/UDP", "DNS allowed").through("default/web", 0, Lookup),
				deny("default/foo", "google.com", "80", "wget http://google.com: download timed out"),
				allow("default/foo", "google.com", "53/UDP", "the port-53 rule has no `to`: DNS to any destination is allowed"),
			},
		}},
	})
	return out
}
