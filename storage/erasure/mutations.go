package erasure

import (
	"context"

	"github.com/tollgate-dev/tollgate/storage/mutation"
)

// mutationsOf reads e's mutations of table, on every node in cluster
// mode (storage/mutation says why). Filtered by the erasure's marker; the
// batch tags (marker/N) are told apart by mutation.Tagged.
func (r *Runner) mutationsOf(ctx context.Context, table string, e *Erasure) (mutation.Table, error) {
	return r.mut.Read(ctx, table, marker(e))
}
