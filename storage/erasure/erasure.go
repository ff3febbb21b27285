// Package erasure erases a data subject — a user, a request, a session or
// a property value of one tenant — from everywhere Tollgate keeps it: the
// requests, feedback and scores tables in ClickHouse, the exact and
// semantic cache entries in Redis, and the records still on their way to
// ClickHouse (the log writer's memory, write-ahead log and spool).
//
// An erasure is asked for through the API (Store.Request), which records
// it, pending, in the erasures table (the audit log, chschema migration 9)
// and answers at once. A Runner, in one process at a time, then carries it
// out step by step (job.go) and marks it done; Store.Get reports where it
// stands. The log writer of every process reads the same table (List) and
// drops a subject's records before it inserts them, however long they wait
// in a spool. See docs/privacy.md.
package erasure

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Kind is what an erasure's subject is.
type Kind string

const (
	User     Kind = "user"     // every request of a Helicone-User-Id
	Request  Kind = "request"  // one request id
	Session  Kind = "session"  // every request of a Helicone-Session-Id
	Property Kind = "property" // every request carrying a property name = value
)

// Subject is what to erase, inside one tenant.
type Subject struct {
	Kind  Kind
	Key   string // the property name (lowercase, as stored); Property only
	Value string // the user id, request id, session id or property value
}

// maxSubject bounds a subject's value and name: every writer holds each
// erasure's subject in memory (List), so it is kept small; ids and
// property values of that size are the norm.
const maxSubject = 256

// Validate checks a subject from the API and puts it in the form the
// tables hold (a request id as a lowercase UUID, a property name in
// lowercase). Its errors are safe to show to the caller.
func (s *Subject) Validate() error {
	if s.Value == "" {
		return errors.New("the subject is empty")
	}
	if len(s.Value) > maxSubject || len(s.Key) > maxSubject {
		return fmt.Errorf("the subject is longer than %d bytes", maxSubject)
	}
	if !utf8.ValidString(s.Value) || !utf8.ValidString(s.Key) {
		return errors.New("the subject is not valid UTF-8")
	}
	switch s.Kind {
	case User, Session:
		if s.Key != "" {
			return errors.New("only a property erasure has a name")
		}
	case Request:
		id, err := uuid.Parse(s.Value)
		if err != nil {
			return errors.New("a request id is a UUID")
		}
		s.Value = id.String()
	case Property:
		if s.Key == "" {
			return errors.New("a property erasure needs the property's name")
		}
		s.Key = strings.ToLower(s.Key)
	default:
		return fmt.Errorf("unknown subject kind %q", s.Kind)
	}
	return nil
}

// Status of an erasure.
const (
	Pending = "pending"
	Done    = "done"
)

// Erasure is one row of the audit log, as it stands.
type Erasure struct {
	ID      string
	Tenant  string
	Subject Subject
	// RequestedBy names the credential that asked: a key's hash prefix,
	// never the key.
	RequestedBy string
	// RequestedAt is the cutoff, whole seconds (DateTime): records created
	// before it are erased.
	RequestedAt time.Time
	Status      string // Pending or Done
	Step        string // the step reached (job.go); "done" at the end
	Detail      string // what each step found and removed (counts)
	CompletedAt time.Time
	version     uint64
}
