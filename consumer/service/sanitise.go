package service

import "strings"

// sanitise removes a raw token from a message before it reaches a log, an
// error or the audit trail, and bounds its length.
func sanitise(msg, rawToken string) string {
	if rawToken != "" {
		msg = strings.ReplaceAll(msg, rawToken, "[token]")
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return msg
}
