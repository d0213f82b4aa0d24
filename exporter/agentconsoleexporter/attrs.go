package agentconsoleexporter

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The helpers accept the few value types a producer could reasonably choose
// for a key (an int sent as a string or a double, a string array sent as
// one string), so that the console still shows something useful when the
// receiver and the console disagree on a type.

func getStr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeEmpty:
		return ""
	default:
		return v.AsString()
	}
}

func getInt(m pcommon.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		return int64(v.Double()), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func getBool(m pcommon.Map, key string) bool {
	v, ok := m.Get(key)
	if !ok {
		return false
	}
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeStr:
		b, _ := strconv.ParseBool(v.Str())
		return b
	}
	return false
}

func getStrs(m pcommon.Map, key string) []string {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]string, 0, s.Len())
		for i := 0; i < s.Len(); i++ {
			out = append(out, s.At(i).AsString())
		}
		return out
	case pcommon.ValueTypeStr:
		if v.Str() == "" {
			return nil
		}
		return []string{v.Str()}
	case pcommon.ValueTypeEmpty:
		return nil
	}
	return []string{v.AsString()}
}

// first returns the first non-empty string of key looked up in each map in
// turn: record attributes before resource attributes.
func first(key string, maps ...pcommon.Map) string {
	for _, m := range maps {
		if s := getStr(m, key); s != "" {
			return s
		}
	}
	return ""
}
