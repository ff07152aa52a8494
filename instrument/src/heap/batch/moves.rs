//! A block's move (realloc): counted in the lane while its budget lasts, else on the slow
//! path, which reopens an exhausted lane.

use super::Cache;
use crate::ids::Tag;

impl Cache {
    /// A block of `owner` moved from `old` to `new` bytes (realloc): whether to sample the
    /// moved block (its move ended the sampling countdown).
    #[inline]
    pub(in crate::heap) fn on_move(&self, owner: Tag, old: u64, new: u64) -> bool {
        if owner.to_bits() != self.lane.get() {
            return self.move_other(owner, old, new);
        }
        // The lane's allocated bytes are what left its budget, as in `alloc_fast`; below zero
        // it wraps, and `close_lane` takes `armed - budget` as the lane's bytes all the same.
        let (left, borrow) = self.budget.get().overflowing_sub(new);
        self.budget.set(left);
        self.lane_alloc_blocks.set(self.lane_alloc_blocks.get() + 1);
        self.lane_free_bytes.set(self.lane_free_bytes.get() + old);
        self.lane_free_blocks.set(self.lane_free_blocks.get() + 1);
        if borrow | (left == 0) {
            return self.reopen_after_move();
        }
        false
    }

    /// [`Cache::on_move`] past the lane's budget (the move is counted in the lane already): the
    /// lane closes (its bytes count down the sampling countdown) and reopens with a new budget,
    /// as an allocation's slow path does; without that, every later move of the lane's blocks
    /// would come here until the next allocation. A move that ends the countdown draws the next
    /// one and samples the moved block, as an allocation that ends it does.
    #[cold]
    #[inline(never)]
    fn reopen_after_move(&self) -> bool {
        self.close_lane(0);
        // The lane was open: the thread is in a region and not nested.
        let sample = self.draw(true);
        self.open_lane();
        sample
    }

    /// [`Cache::on_move`] for another tag's block (or with the lane closed): counted through the
    /// cache, outside the countdown (as its free would be).
    #[cold]
    #[inline(never)]
    fn move_other(&self, owner: Tag, old: u64, new: u64) -> bool {
        self.count(owner, old, false);
        self.count(owner, new, true);
        false
    }
}
