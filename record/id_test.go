package record

import (
	"testing"

	"github.com/google/uuid"
)

func TestNewIDIsAUUIDv7(t *testing.T) {
	a, b := NewID(), NewID()
	for _, s := range []string{a, b} {
		id, err := uuid.Parse(s)
		if err != nil || id.Version() != 7 {
			t.Errorf("NewID() = %q: want a UUIDv7 (err %v)", s, err)
		}
	}
	if a == b {
		t.Errorf("two ids are the same: %s", a)
	}
}
