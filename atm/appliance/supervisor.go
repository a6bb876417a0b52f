package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm"
)

// The supervisor's operations on the control endpoint (issue 13 §1), each
// taking an operator's credentials like the other /operator routes and
// calling the same core operation as the kiosk's supervisor screens
// (docs/control.md):
//
//	POST /operator/out-of-service   take the terminal out of service
//	POST /operator/in-service       put it back
//	POST /operator/replenish        JSON atm.Replenishment -> the report
//	POST /operator/balance?day=D    daily balancing against the host -> the report
//
// The reports come as JSON, or with format=text (and lang=en or zh) as
// the printable lines.

// maxSupervisorBody bounds a request body (a replenishment's JSON).
const maxSupervisorBody = 64 << 10

func (a *Appliance) supervisorRoutes(mux *http.ServeMux) {
	mux.Handle("POST /operator/out-of-service", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		if err := a.Core.TakeOutOfService(r.Context(), operator); err != nil {
			writeJSON(w, operatorErrorCode(err), map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, a.Status())
	}))
	mux.Handle("POST /operator/in-service", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		if _, err := a.Core.PutInService(r.Context(), operator); err != nil {
			writeJSON(w, operatorErrorCode(err), map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, a.Status())
	}))
	mux.Handle("POST /operator/replenish", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		lang, ok := reportFormat(w, r)
		if !ok {
			return
		}
		var rep atm.Replenishment
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSupervisorBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			writeJSON(w, 400, map[string]string{"error": "the body must be a replenishment: {\"removed\":[{\"unit_id\",\"notes\"}],\"loaded\":[{\"unit_id\",\"denomination\",\"currency\",\"notes\"}]}: " + err.Error()})
			return
		}
		report, err := a.Core.Replenish(r.Context(), operator, rep)
		if report == nil {
			writeJSON(w, operatorErrorCode(err), map[string]string{"error": err.Error()})
			return
		}
		code := 200
		if err != nil {
			code = 500 // recorded, but its outcome could not be journaled
		}
		writeReport(w, code, lang, report, report.Lines, err)
	}))
	mux.Handle("POST /operator/balance", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		lang, ok := reportFormat(w, r)
		if !ok {
			return
		}
		day := r.URL.Query().Get("day")
		if day == "" {
			day = a.Core.Day(a.Clock.Now())
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			writeJSON(w, 400, map[string]string{"error": "day must be YYYY-MM-DD"})
			return
		}
		report, err := a.Core.Balance(r.Context(), operator, day)
		switch {
		case report == nil && (errors.Is(err, atm.ErrBadDay) || errors.Is(err, atm.ErrDayArchived)):
			writeJSON(w, 400, map[string]string{"error": err.Error()})
		case report == nil:
			writeJSON(w, 500, map[string]string{"error": err.Error()})
		case err != nil && report.Host == nil:
			writeReport(w, http.StatusBadGateway, lang, report, report.Lines, err) // the terminal's side only
		case err != nil:
			writeReport(w, 500, lang, report, report.Lines, err)
		default:
			writeReport(w, 200, lang, report, report.Lines, nil)
		}
	}))
}

// operatorErrorCode is the status of a refused operator action.
func operatorErrorCode(err error) int {
	switch {
	case errors.Is(err, atm.ErrBadReplenishment):
		return 400
	case errors.Is(err, atm.ErrBusy), errors.Is(err, atm.ErrSettleFirst), errors.Is(err, atm.ErrNotOutOfService),
		errors.Is(err, atm.ErrOperatorBusy):
		return 409
	}
	return 500
}

// reportFormat reads format (json, the default, or text) and lang (en,
// the default, or zh); "" means JSON.
func reportFormat(w http.ResponseWriter, r *http.Request) (lang string, ok bool) {
	q := r.URL.Query()
	switch q.Get("format") {
	case "", "json":
		return "", true
	case "text":
		lang = q.Get("lang")
		if lang == "" {
			lang = "en"
		}
		if !slices.Contains(atm.ReportLanguages, lang) {
			writeJSON(w, 400, map[string]string{"error": fmt.Sprintf("lang must be one of %s", strings.Join(atm.ReportLanguages, ", "))})
			return "", false
		}
		return lang, true
	}
	writeJSON(w, 400, map[string]string{"error": "format must be json or text"})
	return "", false
}

// writeReport writes report as JSON ({"error", "report"} when err is
// set), or its lines in lang as plain text (the error on a first line
// "ERROR: ...").
func writeReport(w http.ResponseWriter, code int, lang string, report any, lines func(string) ([]string, error), err error) {
	if lang == "" {
		if err != nil {
			writeJSON(w, code, map[string]any{"error": err.Error(), "report": report})
			return
		}
		writeJSON(w, code, report)
		return
	}
	text, lerr := lines(lang)
	if lerr != nil {
		writeJSON(w, 500, map[string]string{"error": lerr.Error()})
		return
	}
	if err != nil {
		text = append([]string{"ERROR: " + err.Error()}, text...)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(strings.Join(text, "\n") + "\n"))
}
