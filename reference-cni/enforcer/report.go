package enforcer

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
)

// ReasonPolicyNotEnforced is the reason of the Warning event the enforcer
// posts on a NetworkPolicy it cannot compile.
const ReasonPolicyNotEnforced = "PolicyNotEnforced"

// reportTimeout bounds the API calls of one report, so that an unreachable
// API server cannot stall the sync loop for long.
const reportTimeout = 5 * time.Second

// report publishes the unenforceable policies of a sync: the metric always,
// and an event for each policy not reported yet with the same message.
func (e *Enforcer) report(ctx context.Context, policies []*networkingv1.NetworkPolicy, unenforceable []*compiler.UnenforceableError) {
	e.metrics.observeUnenforceable(len(unenforceable))
	byKey := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range policies {
		byKey[np.Namespace+"/"+np.Name] = np
	}
	current := map[string]string{}
	for _, u := range unenforceable {
		key := u.Namespace + "/" + u.Name
		msg := fmt.Sprintf("node %s cannot enforce this policy and keeps its previous rules: %v", e.opts.Node, u.Err)
		current[key] = msg
		if e.reported[key] == msg {
			continue
		}
		np := byKey[key]
		if np == nil {
			continue
		}
		if err := e.postEvent(ctx, np, msg); err != nil {
			e.log.Error("posting the event of an unenforceable policy", "policy", key, "err", err)
			continue
		}
		e.reported[key] = msg
	}
	for key := range e.reported {
		if _, ok := current[key]; !ok {
			delete(e.reported, key)
		}
	}
}

// postEvent creates (or, after a restart, updates) this node's Warning event
// on a policy.
func (e *Enforcer) postEvent(ctx context.Context, np *networkingv1.NetworkPolicy, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	now := metav1.Now()
	events := e.client.CoreV1().Events(np.Namespace)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: np.Namespace, Name: eventName(np.Name, e.opts.Node)},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy",
			Namespace: np.Namespace, Name: np.Name, UID: np.UID, ResourceVersion: np.ResourceVersion,
		},
		Type: corev1.EventTypeWarning, Reason: ReasonPolicyNotEnforced, Message: msg,
		Source:         corev1.EventSource{Component: "netpolcheck-enforcer", Host: e.opts.Node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	_, err := events.Create(ctx, ev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	old, err := events.Get(ctx, ev.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	old.InvolvedObject, old.Message, old.LastTimestamp, old.Count = ev.InvolvedObject, msg, now, old.Count+1
	_, err = events.Update(ctx, old, metav1.UpdateOptions{})
	return err
}

// eventName is the name of a node's event on a policy: one per pair.
func eventName(policy, node string) string {
	return strings.ToLower(policy + "." + node + ".not-enforced")
}
