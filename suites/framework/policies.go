package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive // as does Gomega's

	"go.yaml.in/yaml/v3"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/matrix/manifest"
)

// labelManaged marks the policies the suites create, so set-semantics steps
// only ever delete their own.
const labelManaged = "netpolcheck.io/scenario"

func (r *run) applyPolicies(ctx context.Context, step *Step) {
	for _, key := range step.Delete {
		ns, name, _ := strings.Cut(key, "/")
		err := r.env.Client.NetworkingV1().NetworkPolicies(r.names.Namespace(ns)).Delete(ctx, name, metav1.DeleteOptions{})
		Expect(err).NotTo(HaveOccurred(), "deleting policy %s", key)
	}
	if step.Manifests != "" {
		parsed, err := manifest.ParsePolicies(fmt.Sprintf("step %q", step.Name), []byte(step.Manifests), "default")
		if step.Rejected != "" {
			Expect(err).To(MatchError(ContainSubstring(step.Rejected)), "netpolcheck must reject the manifest")
			GinkgoWriter.Printf("rejected by netpolcheck: %v\n", err)
			r.expectServerRejects(ctx, step.Manifests)
			return
		}
		Expect(err).NotTo(HaveOccurred())
		for _, np := range parsed.Items {
			np.Namespace = r.names.Namespace(np.Namespace)
			r.upsert(ctx, np)
		}
	}
	if step.Policies != nil {
		r.reconcile(ctx, step.Policies(r.names))
	}
}

// upsert creates the policy, or replaces the one of the same name.
func (r *run) upsert(ctx context.Context, np *networkingv1.NetworkPolicy) {
	np = np.DeepCopy()
	if np.Labels == nil {
		np.Labels = map[string]string{}
	}
	np.Labels[labelManaged] = shortHash(r.s.ID)
	client := r.env.Client.NetworkingV1().NetworkPolicies(np.Namespace)
	_, err := client.Create(ctx, np, metav1.CreateOptions{FieldValidation: "Strict"})
	if apierrors.IsAlreadyExists(err) {
		current, getErr := client.Get(ctx, np.Name, metav1.GetOptions{})
		Expect(getErr).NotTo(HaveOccurred())
		np.ResourceVersion = current.ResourceVersion
		_, err = client.Update(ctx, np, metav1.UpdateOptions{FieldValidation: "Strict"})
	} else if err == nil && r.s.Model != nil {
		ns, name := np.Namespace, np.Name
		DeferCleanup(func(ctx SpecContext) {
			err := r.env.Client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				Fail(fmt.Sprintf("deleting policy %s/%s: %v", ns, name, err))
			}
		})
	}
	Expect(err).NotTo(HaveOccurred(), "applying policy %s/%s", np.Namespace, np.Name)
}

// reconcile makes the scenario's policies exactly the desired set.
func (r *run) reconcile(ctx context.Context, desired []*networkingv1.NetworkPolicy) {
	want := map[string]bool{}
	namespaces := map[string]bool{}
	for _, np := range desired {
		want[np.Namespace+"/"+np.Name] = true
		namespaces[np.Namespace] = true
	}
	for _, p := range r.pods {
		namespaces[p.namespace] = true
	}
	selector := labelManaged + "=" + shortHash(r.s.ID)
	for ns := range namespaces {
		list, err := r.env.Client.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		Expect(err).NotTo(HaveOccurred())
		for _, np := range list.Items {
			if !want[np.Namespace+"/"+np.Name] {
				err := r.env.Client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, np.Name, metav1.DeleteOptions{})
				Expect(err).NotTo(HaveOccurred(), "deleting policy %s/%s", ns, np.Name)
			}
		}
	}
	for _, np := range desired {
		r.upsert(ctx, np)
	}
}

// expectServerRejects sends every document of manifests to the API server
// as written (dry run, strict field validation) and expects at least one to
// be rejected: netpolcheck and the API server must agree that the manifest
// is invalid.
func (r *run) expectServerRejects(ctx context.Context, manifests string) {
	verdicts, err := serverVerdicts(manifests, r.names.Namespace, func(namespace string, body []byte) error {
		return r.env.Client.NetworkingV1().RESTClient().Post().
			Namespace(namespace).Resource("networkpolicies").
			Param("fieldValidation", "Strict").Param("dryRun", "All").
			Body(bytes.NewReader(body)).Do(ctx).Error()
	})
	Expect(err).NotTo(HaveOccurred(), "the manifest is not YAML at all")
	rejected := false
	for _, v := range verdicts {
		GinkgoWriter.Println(v)
		rejected = rejected || v.rejected
	}
	Expect(rejected).To(BeTrue(), "the API server accepted a manifest netpolcheck rejects")
}

// serverVerdict is what happened to one document of a manifest sent to the
// API server.
type serverVerdict struct {
	document int    // 1-based
	sent     bool   // false: not sent, see reason
	rejected bool   // sent and rejected
	reason   string // the API server's error, or why it was not sent
}

func (v serverVerdict) String() string {
	switch {
	case !v.sent:
		return fmt.Sprintf("document %d: not sent to the API server: %s", v.document, v.reason)
	case v.rejected:
		return fmt.Sprintf("document %d: rejected by the API server: %s", v.document, v.reason)
	}
	return fmt.Sprintf("document %d: accepted by the API server", v.document)
}

// serverVerdicts sends each document of manifests, as JSON, with send and
// records the API server's verdict. Every document is sent, mappings or not
// (the API server judges a list or a scalar as it judges any body); the
// namespace of a mapping's metadata (default "default") is mapped to the
// run's name by namespace. Only a document that has no JSON form (empty, or
// a mapping with keys that are not strings) is not sent, and says so.
func serverVerdicts(manifests string, namespace func(string) string, send func(namespace string, body []byte) error) ([]serverVerdict, error) {
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	var verdicts []serverVerdict
	for n := 1; ; n++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return verdicts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		verdict := serverVerdict{document: n}
		if doc == nil {
			verdict.reason = "the document is empty"
			verdicts = append(verdicts, verdict)
			continue
		}
		ns := "default"
		if obj, ok := doc.(map[string]any); ok {
			if meta, ok := obj["metadata"].(map[string]any); ok {
				if name, ok := meta["namespace"].(string); ok && name != "" {
					ns = name
				}
				meta["namespace"] = namespace(ns)
			}
		}
		body, err := json.Marshal(doc)
		if err != nil {
			verdict.reason = fmt.Sprintf("it has no JSON form: %v", err)
			verdicts = append(verdicts, verdict)
			continue
		}
		verdict.sent = true
		if err := send(namespace(ns), body); err != nil {
			verdict.rejected, verdict.reason = true, err.Error()
		}
		verdicts = append(verdicts, verdict)
	}
}
