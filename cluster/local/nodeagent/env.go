package nodeagent

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// defaultPath is the PATH container runtimes give a container whose image
// sets none (the mapped images set none).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// apiService is the kubernetes Service in default, whose variables every
// container gets (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, ...).
type apiService struct {
	host string
	port int32
}

// kubernetesService reads the kubernetes Service's address.
func kubernetesService(ctx context.Context, client kubernetes.Interface) (apiService, error) {
	svc, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return apiService{}, fmt.Errorf("reading the kubernetes service: %w", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "https" || len(svc.Spec.Ports) == 1 {
			return apiService{host: svc.Spec.ClusterIP, port: p.Port}, nil
		}
	}
	return apiService{}, fmt.Errorf("the kubernetes service has no https port")
}

// serviceEnv is the kubelet's environment of a Service (as for the
// kubernetes Service, which every pod gets whatever enableServiceLinks says).
func (s apiService) serviceEnv() []corev1.EnvVar {
	port := strconv.Itoa(int(s.port))
	url := "tcp://" + net.JoinHostPort(s.host, port)
	prefix := "KUBERNETES_PORT_" + port + "_TCP"
	return []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: s.host},
		{Name: "KUBERNETES_SERVICE_PORT", Value: port},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: port},
		{Name: "KUBERNETES_PORT", Value: url},
		{Name: prefix, Value: url},
		{Name: prefix + "_PROTO", Value: "tcp"},
		{Name: prefix + "_PORT", Value: port},
		{Name: prefix + "_ADDR", Value: s.host},
	}
}

// environ is a container's whole environment, and nothing of the agent's:
// PATH and HOSTNAME as a runtime sets them, the kubernetes Service's
// variables, then envFrom and env in order (later ones win; $(VAR) refers to
// any earlier one).
func environ(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, c *corev1.Container, api apiService) ([]string, map[string]string, error) {
	hostname := pod.Name
	if pod.Spec.HostNetwork {
		hostname = ""
	}
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	set("PATH", defaultPath)
	if hostname != "" {
		set("HOSTNAME", hostname)
	}
	for _, e := range api.serviceEnv() {
		set(e.Name, e.Value)
	}
	for _, from := range c.EnvFrom {
		data, err := envFromData(ctx, client, pod.Namespace, from)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: envFrom: %w", c.Name, err)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		v, ok, err := envValue(ctx, client, pod, e, vars)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: env %s: %w", c.Name, e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	list := make([]string, 0, len(order))
	for _, name := range order {
		list = append(list, name+"="+vars[name])
	}
	return list, vars, nil
}

// envValue resolves one variable; ok is false for an optional reference to
// something missing (the variable is left out, as the kubelet does).
func envValue(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, e corev1.EnvVar, vars map[string]string) (string, bool, error) {
	from := e.ValueFrom
	switch {
	case from == nil:
		return expand(e.Value, vars), true, nil
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return missing(err, ref.Optional, "configMap "+ref.Name)
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if b, ok := cm.BinaryData[ref.Key]; ok {
			return string(b), true, nil
		}
		return missing(apierrors.NewNotFound(corev1.Resource("configmaps"), ref.Name+"/"+ref.Key), ref.Optional, "key "+ref.Key+" of configMap "+ref.Name)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		secret, err := client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return missing(err, ref.Optional, "secret "+ref.Name)
		}
		if b, ok := secret.Data[ref.Key]; ok {
			return string(b), true, nil
		}
		return missing(apierrors.NewNotFound(corev1.Resource("secrets"), ref.Name+"/"+ref.Key), ref.Optional, "key "+ref.Key+" of secret "+ref.Name)
	}
	return "", false, fmt.Errorf("only value, fieldRef, configMapKeyRef and secretKeyRef are supported by the local cluster")
}

// missing is the result of a reference to an object or key that could not
// be read: left out when optional and not found, an error otherwise.
func missing(err error, optional *bool, what string) (string, bool, error) {
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return "", false, nil
	}
	return "", false, fmt.Errorf("reading %s: %w", what, err)
}

// envFromData is the data of an envFrom source (nil for an optional one
// that does not exist).
func envFromData(ctx context.Context, client kubernetes.Interface, namespace string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
		if err != nil {
			_, _, err = missing(err, from.ConfigMapRef.Optional, "configMap "+from.ConfigMapRef.Name)
			return nil, err
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		secret, err := client.CoreV1().Secrets(namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if err != nil {
			_, _, err = missing(err, from.SecretRef.Optional, "secret "+from.SecretRef.Name)
			return nil, err
		}
		data := map[string]string{}
		for k, b := range secret.Data {
			data[k] = string(b)
		}
		return data, nil
	}
	return nil, fmt.Errorf("only configMapRef and secretRef are supported")
}

// fieldValue is a downward-API field of the pod (status fields as the agent
// has set them on its copy before the containers start).
func fieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	case "status.podIPs":
		ips := make([]string, 0, len(pod.Status.PodIPs))
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		return strings.Join(ips, ","), nil
	case "status.hostIPs":
		ips := make([]string, 0, len(pod.Status.HostIPs))
		for _, ip := range pod.Status.HostIPs {
			ips = append(ips, ip.IP)
		}
		return strings.Join(ips, ","), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels[": pod.Labels, "metadata.annotations[": pod.Annotations} {
		if key, ok := strings.CutPrefix(fieldPath, prefix); ok {
			if k, err := strconv.Unquote(strings.TrimSuffix(key, "]")); err == nil {
				return m[k], nil
			}
		}
	}
	return "", fmt.Errorf("field %q is not supported by the local cluster", fieldPath)
}

// formatMap is the downward API's rendering of labels or annotations:
// key="value" lines, sorted.
func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, k+"="+strconv.Quote(v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// expand replaces $(VAR) with the variable's value, leaves unknown
// references as they are and turns $$ into $, as the kubelet does.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
