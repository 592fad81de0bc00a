// Package deploy holds the reference CNI's Kubernetes manifests for kind
// clusters (reference-cni.yaml) and decodes them into typed objects, so an
// installer can create them with client-go and tests can check them.
package deploy

import (
	_ "embed"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// DefaultImage is the image the manifest names; one image holds every
// netpolcheck binary at /.
const DefaultImage = "ghcr.io/netpolcheck/netpolcheck:dev"

//go:embed reference-cni.yaml
var manifest string

// Manifest returns reference-cni.yaml with every image set to image; an
// empty image keeps DefaultImage.
func Manifest(image string) string {
	if image == "" {
		return manifest
	}
	return strings.ReplaceAll(manifest, DefaultImage, image)
}

// Objects are the objects of the manifest, in the order to create them.
type Objects struct {
	ServiceAccount     *corev1.ServiceAccount
	ClusterRole        *rbacv1.ClusterRole
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	DaemonSet          *appsv1.DaemonSet
}

// Load decodes the manifest with its images set to image (empty keeps
// DefaultImage).
func Load(image string) (*Objects, error) {
	return Parse(Manifest(image))
}

// Parse decodes a multi-document manifest holding exactly one object of
// each kind in Objects. Unknown fields are errors, so a typo in the
// manifest fails here instead of being dropped by the API server.
func Parse(manifestYAML string) (*Objects, error) {
	var objs Objects
	for i, doc := range splitDocuments(manifestYAML) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", i+1, err)
		}
		var target any
		var seen bool
		switch meta.Kind {
		case "ServiceAccount":
			seen = objs.ServiceAccount != nil
			objs.ServiceAccount = &corev1.ServiceAccount{}
			target = objs.ServiceAccount
		case "ClusterRole":
			seen = objs.ClusterRole != nil
			objs.ClusterRole = &rbacv1.ClusterRole{}
			target = objs.ClusterRole
		case "ClusterRoleBinding":
			seen = objs.ClusterRoleBinding != nil
			objs.ClusterRoleBinding = &rbacv1.ClusterRoleBinding{}
			target = objs.ClusterRoleBinding
		case "DaemonSet":
			seen = objs.DaemonSet != nil
			objs.DaemonSet = &appsv1.DaemonSet{}
			target = objs.DaemonSet
		default:
			return nil, fmt.Errorf("manifest document %d: unexpected kind %q", i+1, meta.Kind)
		}
		if seen {
			return nil, fmt.Errorf("manifest document %d: a second %s", i+1, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			return nil, fmt.Errorf("manifest document %d (%s): %w", i+1, meta.Kind, err)
		}
	}
	if objs.ServiceAccount == nil || objs.ClusterRole == nil || objs.ClusterRoleBinding == nil || objs.DaemonSet == nil {
		return nil, fmt.Errorf("manifest lacks an object: got %+v", objs)
	}
	return &objs, nil
}

// splitDocuments splits YAML on "---" separator lines and drops documents
// that hold only comments or whitespace.
func splitDocuments(text string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+text, "\n---") {
		hasContent := false
		for _, line := range strings.Split(doc, "\n") {
			if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				hasContent = true
				break
			}
		}
		if hasContent {
			docs = append(docs, doc)
		}
	}
	return docs
}
