package provider

import (
	"os"
	"testing"
)

// A reset accumulator reports exactly what a new one does, whatever the
// stream before it left behind: a different provider, a line cut in the
// middle, an event name, text, tool-call arguments.
func TestStreamAccumulatorReset(t *testing.T) {
	anthropic, err := os.ReadFile("testdata/anthropic_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	openai, err := os.ReadFile("testdata/openai_chat_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	cut := "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n" +
		"event: ping\nid: 7\ndata: {\"model\":\"half"
	for _, before := range [][]byte{anthropic, []byte(cut)} {
		a := NewStreamAccumulator(Anthropic)
		a.Write(before)
		a.Reset(OpenAI)
		a.Write(openai[:len(openai)/2])
		a.Write(openai[len(openai)/2:])
		a.Finish()
		got := streamResult{a.Usage(), a.Model(), a.Text(), a.Malformed()}
		if want := accumulate(OpenAI, openai); got != want {
			t.Errorf("after Reset = %+v, want %+v", got, want)
		}
		if p, c := a.Reported(); !p || !c {
			t.Errorf("Reported = %v, %v after Reset; the stream reported both", p, c)
		}
	}
}
