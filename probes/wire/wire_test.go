package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestRequestAnswerRoundTrip(t *testing.T) {
	req := NewRequest()
	if len(req.Nonce) != 32 || req.Version != Version {
		t.Fatalf("request = %+v", req)
	}
	if other := NewRequest(); other.Nonce == req.Nonce {
		t.Error("two requests share a nonce")
	}
	got, err := ParseRequest(Marshal(req))
	if err != nil || got != req {
		t.Fatalf("ParseRequest = %+v, %v", got, err)
	}
	ans := Answer{Version: Version, Nonce: req.Nonce, Identity: "x/a", Container: "serve-80-tcp", Port: 80, Protocol: "TCP"}
	b := Marshal(ans)
	if !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("answer is not one JSON line: %q", b)
	}
	a, err := ParseAnswer(b, req)
	if err != nil || a != ans {
		t.Fatalf("ParseAnswer = %+v, %v", a, err)
	}
	if a.Peer() != "x/a/serve-80-tcp" || !a.Matches("x/a") || !a.Matches("") || a.Matches("x/b") {
		t.Errorf("peer %q / matching wrong", a.Peer())
	}
}

func TestParseAnswerRejects(t *testing.T) {
	req := NewRequest()
	for name, b := range map[string]string{
		"not JSON":      "HTTP/1.1 400 Bad Request\r\n",
		"other version": `{"v":2,"nonce":"` + req.Nonce + `","identity":"x/a"}`,
		"other nonce":   `{"v":1,"nonce":"00","identity":"x/a"}`,
	} {
		_, err := ParseAnswer([]byte(b), req)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if errors.Is(err, ErrOtherNonce) != (name == "other nonce") {
			t.Errorf("%s: %v; ErrOtherNonce only for another request's nonce", name, err)
		}
	}
}

func TestParseRequestOfAnotherVersionKeepsNonce(t *testing.T) {
	r, err := ParseRequest([]byte(`{"v":9,"nonce":"abc"}`))
	if err == nil || r.Nonce != "abc" {
		t.Errorf("ParseRequest = %+v, %v; want the nonce and an error", r, err)
	}
}
