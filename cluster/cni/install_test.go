package cni

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestInstall(t *testing.T) {
	unreachable := &rest.Config{Host: "http://127.0.0.1:1", Timeout: time.Second}
	cases := []struct {
		cni          string
		wantErr      string
		wantProgress []string
	}{
		{cni: "none", wantProgress: []string{"cni none: rendering nothing to install", "cni none: nothing to apply"}},
		{cni: "reference", wantErr: "cni reference: applying ServiceAccount netpolcheck-node:",
			wantProgress: []string{"cni reference: rendering reference-cni/deploy with image " + testImage, "cni reference: applying 4 objects"}},
	}
	for _, tc := range cases {
		t.Run(tc.cni, func(t *testing.T) {
			inst, err := New(tc.cni, Options{Image: testImage})
			if err != nil {
				t.Fatal(err)
			}
			var progress bytes.Buffer
			err = Install(context.Background(), unreachable, inst, time.Second, &progress)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			for _, line := range tc.wantProgress {
				if !strings.Contains(progress.String(), line) {
					t.Errorf("progress lacks %q:\n%s", line, progress.String())
				}
			}
		})
	}
}
