package matrix_test

import (
	"testing"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// cell is one expected verdict of a TCP connection.
type cell struct {
	from, to string
	port     int32
	allowed  bool
}

// TestSidecarNamedPorts: a sidecar's (restartable init container's) ports
// are served like the containers', and named ports resolve against them,
// for ingress and egress alike.
func TestSidecarNamedPorts(t *testing.T) {
	model := func() *matrix.Model {
		return &matrix.Model{
			Namespaces: []matrix.Namespace{{Name: "x", Labels: map[string]string{"kubernetes.io/metadata.name": "x"}}},
			Pods: []matrix.Pod{
				{
					Namespace: "x", Name: "a", Labels: map[string]string{"pod": "a"}, IPs: []string{"10.244.1.10"},
					Containers: []matrix.Container{{Name: "app", Ports: []matrix.ContainerPort{{Name: "http", ContainerPort: 80}}}},
					Sidecars:   []matrix.Container{{Name: "proxy", Ports: []matrix.ContainerPort{{Name: "proxy", ContainerPort: 8080}}}},
				},
				{
					Namespace: "x", Name: "b", Labels: map[string]string{"pod": "b"}, IPs: []string{"10.244.1.11"},
					Containers: []matrix.Container{{Name: "app", Ports: []matrix.ContainerPort{{Name: "http", ContainerPort: 80}}}},
				},
			},
		}
	}
	cases := []struct {
		name     string
		policies string
		want     []cell
	}{
		{
			name: "ingress on the sidecar's named port",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-proxy}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: proxy}]}]`,
			want: []cell{{"x/b", "x/a", 8080, true}, {"x/b", "x/a", 80, false}, {"x/a", "x/b", 80, true}},
		},
		{
			name: "egress to the sidecar's named port",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out-to-proxy}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress: [{ports: [{port: proxy}]}]`,
			want: []cell{{"x/b", "x/a", 8080, true}, {"x/b", "x/a", 80, false}, {"x/a", "x/b", 80, true}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := engine(t, model(), policies(t, tc.policies)).Table()
			for _, c := range tc.want {
				got, ok := table.Allowed(c.from, c.to, pp(c.port, tcp))
				if !ok || got != c.allowed {
					t.Errorf("%s -> %s:%d: allowed = %v (cell in the table: %v), want %v", c.from, c.to, c.port, got, ok, c.allowed)
				}
			}
		})
	}
}
