package cni

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name, manifest string
		want           []string // kind/name
		err            string
	}{
		{
			name:     "documents, comments and empty documents",
			manifest: "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
			want:     []string{"ConfigMap/a", "Secret/b"},
		},
		{
			name:     "List",
			manifest: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n",
			want:     []string{"ConfigMap/a", "ConfigMap/b"},
		},
		{
			name:     "JSON",
			manifest: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}`,
			want:     []string{"Namespace/n"},
		},
		{name: "no kind", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n", err: "document 2: no apiVersion or kind"},
		{name: "bad YAML", manifest: "apiVersion: v1\nkind: [\n", err: "document 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode([]byte(tc.manifest))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("decoded %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeKeepsIntegers(t *testing.T) {
	objs, err := Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec: {big: 9007199254740993, port: 8081}\n"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := objs[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"big":9007199254740993`) || !strings.Contains(string(data), `"port":8081`) {
		t.Errorf("numbers changed on the way through: %s", data)
	}
}
