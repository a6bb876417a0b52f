package appliance

import (
	"net"
	"net/http"
	"strings"
)

// loopbackOnly guards the control endpoint against a browser on the
// appliance that a web page steers at it: a request whose Host header does
// not name a loopback address (DNS rebinding: evil.example resolving to
// 127.0.0.1) gets 421 Misdirected Request, and a cross-origin state change
// (a form or fetch POST from another site) gets 403 from
// http.CrossOriginProtection.
func loopbackOnly(h http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	guarded := csrf.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "control endpoint: Host must be a loopback address (localhost, 127.0.0.0/8, ::1)", http.StatusMisdirectedRequest)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether hostport (a Host header) names the loopback
// interface.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
