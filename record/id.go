package record

import "github.com/google/uuid"

// NewID makes a request id: a UUIDv7, so ids sort by time, or a random UUID
// in the unlikely case the clock cannot be read. The processor, the ingest
// API and the ClickHouse writer (for a record that arrives without one) all
// make ids here.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
