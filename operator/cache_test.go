package operator

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestCacheKeepsOfConfigMapsOnlyCertificates(t *testing.T) {
	in := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "api-ca", Namespace: "team-a", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{"app": "api"}, Annotations: map[string]string{"note": "big"}},
		Data:       map[string]string{"ca.crt": testCA, "dashboard.json": `{"panels": []}`},
		BinaryData: map[string][]byte{"bundle.pem": []byte(testCA), "blob": {1, 2, 3}},
	}
	got, err := keepCertificates(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "api-ca", Namespace: "team-a", UID: "u1", ResourceVersion: "7"},
		Data:       map[string]string{"ca.crt": testCA, "dashboard.json": ""},
		BinaryData: map[string][]byte{"bundle.pem": []byte(testCA), "blob": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cached ConfigMap:\n%#v\nwant\n%#v", got, want)
	}
	if in.Data["dashboard.json"] == "" || in.Labels == nil {
		t.Error("the informer's object was changed in place")
	}
	if other, _ := keepCertificates("not a ConfigMap"); other != "not a ConfigMap" {
		t.Errorf("another type came back as %v", other)
	}
}
