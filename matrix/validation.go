package matrix

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidatePolicy applies the API server's validation rules for
// networking.k8s.io/v1 NetworkPolicy (as of Kubernetes 1.37, with strict CIDR
// validation) to a policy, so that a manifest the API server would reject is
// rejected here too, with the same field paths and reasons.
func ValidatePolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&np.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	errs = append(errs, validateSelector(&np.Spec.PodSelector, spec.Child("podSelector"))...)
	for i, rule := range np.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		errs = append(errs, validatePolicyPorts(rule.Ports, path.Child("ports"))...)
		errs = append(errs, validatePeers(rule.From, path.Child("from"))...)
	}
	for i, rule := range np.Spec.Egress {
		path := spec.Child("egress").Index(i)
		errs = append(errs, validatePolicyPorts(rule.Ports, path.Child("ports"))...)
		errs = append(errs, validatePeers(rule.To, path.Child("to"))...)
	}
	types := spec.Child("policyTypes")
	if len(np.Spec.PolicyTypes) > 2 {
		return append(errs, field.Invalid(types, np.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(types.Index(i), t, []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}))
		}
	}
	return errs
}

func validateSelector(sel *metav1.LabelSelector, path *field.Path) field.ErrorList {
	return metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, path)
}

func validatePolicyPorts(ports []networkingv1.NetworkPolicyPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		ppath := path.Index(i)
		if p.Protocol != nil {
			switch *p.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				errs = append(errs, field.NotSupported(ppath.Child("protocol"), *p.Protocol, []string{"TCP", "UDP", "SCTP"}))
			}
		}
		switch {
		case p.Port == nil:
			if p.EndPort != nil {
				errs = append(errs, field.Invalid(ppath.Child("endPort"), *p.EndPort, "may not be specified when `port` is not specified"))
			}
		case p.Port.Type == intstr.Int:
			for _, msg := range validation.IsValidPortNum(int(p.Port.IntVal)) {
				errs = append(errs, field.Invalid(ppath.Child("port"), p.Port.IntVal, msg))
			}
			if p.EndPort != nil {
				if *p.EndPort < p.Port.IntVal {
					errs = append(errs, field.Invalid(ppath.Child("endPort"), *p.EndPort, "must be greater than or equal to `port`"))
				}
				for _, msg := range validation.IsValidPortNum(int(*p.EndPort)) {
					errs = append(errs, field.Invalid(ppath.Child("endPort"), *p.EndPort, msg))
				}
			}
		default:
			if p.EndPort != nil {
				errs = append(errs, field.Invalid(ppath.Child("endPort"), *p.EndPort, "may not be specified when `port` is non-numeric"))
			}
			for _, msg := range validation.IsValidPortName(p.Port.StrVal) {
				errs = append(errs, field.Invalid(ppath.Child("port"), p.Port.StrVal, msg))
			}
		}
	}
	return errs
}

func validatePeers(peers []networkingv1.NetworkPolicyPeer, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, peer := range peers {
		ppath := path.Index(i)
		n := 0
		if peer.PodSelector != nil {
			n++
			errs = append(errs, validateSelector(peer.PodSelector, ppath.Child("podSelector"))...)
		}
		if peer.NamespaceSelector != nil {
			n++
			errs = append(errs, validateSelector(peer.NamespaceSelector, ppath.Child("namespaceSelector"))...)
		}
		if peer.IPBlock != nil {
			n++
			errs = append(errs, validateIPBlock(peer.IPBlock, ppath.Child("ipBlock"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Required(ppath, "must specify a peer"))
		case n > 1 && peer.IPBlock != nil:
			errs = append(errs, field.Forbidden(ppath, "may not specify both ipBlock and another peer"))
		}
	}
	return errs
}

func validateIPBlock(b *networkingv1.IPBlock, path *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(path.Child("cidr"), "")}
	}
	errs := validation.IsValidCIDRForLegacyField(path.Child("cidr"), b.CIDR, true, nil)
	if len(errs) > 0 {
		return errs
	}
	cidr, err := parsePrefix(b.CIDR)
	if err != nil {
		return append(errs, field.Invalid(path.Child("cidr"), b.CIDR, err.Error()))
	}
	for i, s := range b.Except {
		epath := path.Child("except").Index(i)
		if e := validation.IsValidCIDRForLegacyField(epath, s, true, nil); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		except, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, field.Invalid(epath, s, err.Error()))
			continue
		}
		if !cidr.Contains(except.Addr()) || except.Bits() <= cidr.Bits() {
			errs = append(errs, field.Invalid(epath, s, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

// DefaultPolicy returns a copy of np with the defaults the API server applies
// on create: policyTypes is [Ingress], plus Egress when egress rules exist,
// when it was left empty; every port without a protocol gets TCP. Stored
// objects read back from a cluster already carry these defaults.
func DefaultPolicy(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
	out := np.DeepCopy()
	if len(out.Spec.PolicyTypes) == 0 {
		out.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(out.Spec.Egress) > 0 {
			out.Spec.PolicyTypes = append(out.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	tcp := corev1.ProtocolTCP
	for i := range out.Spec.Ingress {
		for j := range out.Spec.Ingress[i].Ports {
			if out.Spec.Ingress[i].Ports[j].Protocol == nil {
				out.Spec.Ingress[i].Ports[j].Protocol = &tcp
			}
		}
	}
	for i := range out.Spec.Egress {
		for j := range out.Spec.Egress[i].Ports {
			if out.Spec.Egress[i].Ports[j].Protocol == nil {
				out.Spec.Egress[i].Ports[j].Protocol = &tcp
			}
		}
	}
	return out
}

// policyName is the "namespace/name" of a policy, as used in explanations.
func policyName(np *networkingv1.NetworkPolicy) string {
	return fmt.Sprintf("%s/%s", np.Namespace, np.Name)
}
