package appliance

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestControlRefusesForeignHostAndCrossOrigin: over real TCP on loopback,
// requests naming another host (DNS rebinding) and cross-site state
// changes are refused; requests from local tools pass.
func TestControlRefusesForeignHostAndCrossOrigin(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /operator/settle", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "settled") })
	srv := httptest.NewServer(loopbackOnly(mux))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, tt := range []struct {
		method, host string
		header       map[string]string
		want         int
	}{
		{"GET", "127.0.0.1:" + port, nil, 200},
		{"GET", "localhost:" + port, nil, 200},
		{"GET", "[::1]:" + port, nil, 200},
		{"GET", "127.0.0.2", nil, 200},
		{"GET", "evil.example:" + port, nil, http.StatusMisdirectedRequest},
		{"GET", "localhost.evil.example", nil, http.StatusMisdirectedRequest},
		{"GET", "10.0.0.5:" + port, nil, http.StatusMisdirectedRequest},
		{"POST", "127.0.0.1:" + port, nil, 200}, // atmctl, curl
		{"POST", "127.0.0.1:" + port, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"POST", "127.0.0.1:" + port, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	} {
		path := "/status"
		if tt.method == "POST" {
			path = "/operator/settle"
		}
		req, err := http.NewRequest(tt.method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s Host %q %v: %d, want %d", tt.method, path, tt.host, tt.header, resp.StatusCode, tt.want)
		}
	}
}
