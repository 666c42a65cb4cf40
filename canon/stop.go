package canon

// StopReason is the stop reason a response ends with, given upstream's
// (or a policy's) and whether the response holds a tool call: tool_use
// without any tool call becomes end_turn, since a client told to run tools
// that never came would wait for them. Both sides apply this one rule: the
// control plane to what its policies decide, the gateway to every response
// it writes.
func StopReason(stop string, hasTools bool) string {
	if stop == "tool_use" && !hasTools {
		return "end_turn"
	}
	return stop
}
