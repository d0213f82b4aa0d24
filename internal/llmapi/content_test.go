package llmapi

import (
	"slices"
	"testing"
)

func TestRequestContent(t *testing.T) {
	cases := []struct {
		name, body string
		want       []Part // the parts inside tool results
	}{
		{"anthropic", `{"model":"m","messages":[{"role":"user","content":"hi"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"cat x"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"OUT1"}]},
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"SKIPPED"}}]}]}`,
			[]Part{{"OUT1", "toolu_1", "Bash"}}},
		{"chat", `{"messages":[{"role":"assistant","tool_calls":[{"id":"call_9","type":"function","function":{"name":"shell","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_9","content":"OUT2"}]}`,
			[]Part{{"OUT2", "call_9", "shell"}}},
		{"responses", `{"input":[{"type":"function_call","call_id":"c1","name":"exec_command","arguments":"{}"},
			{"type":"function_call_output","call_id":"c1","output":"OUT3"}]}`,
			[]Part{{"OUT3", "c1", "exec_command"}}},
		{"gemini", `{"contents":[{"role":"model","parts":[{"functionCall":{"name":"run_shell_command","args":{"command":"ls"}}}]},
			{"role":"user","parts":[{"functionResponse":{"name":"run_shell_command","response":{"output":"OUT4"}}}]}]}`,
			[]Part{{"OUT4", "run_shell_command", "run_shell_command"}}},
	}
	for _, c := range cases {
		var got []Part
		all := 0
		ok := RequestContent([]byte(c.body), func(p Part) {
			all++
			if p.Text == "SKIPPED" {
				t.Errorf("%s: inline media walked", c.name)
			}
			if p.ToolCallID != "" {
				got = append(got, p)
			}
		})
		slices.SortFunc(got, func(a, b Part) int {
			if a.Text < b.Text {
				return -1
			}
			return 1
		})
		if !ok || !slices.Equal(got, c.want) || all == 0 {
			t.Errorf("%s: %v %+v, want %+v", c.name, ok, got, c.want)
		}
	}
	if RequestContent([]byte(`{"model":"m","messages":[{"ro`), func(Part) {}) {
		t.Error("cut body reported as JSON")
	}
}

func FuzzRequestContent(f *testing.F) {
	f.Add(`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x"}]}]}`)
	f.Add(`{"contents":[{"parts":[{"functionResponse":{"name":"n","response":{"o":"v"}}}]}]}`)
	f.Add(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`)
	f.Fuzz(func(t *testing.T, body string) {
		RequestContent([]byte(body), func(p Part) {
			if p.Text == "" {
				t.Error("empty part")
			}
		})
	})
}
