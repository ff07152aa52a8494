//! A block's move (realloc): counted in the lane while its budget lasts, else on the slow
//! path, which reopens an exhausted lane.

use super::Cache;
use crate::ids::Tag;

impl Cache {
    /// A block of `owner` moved from `old` to `new` bytes (realloc): whether to sample the
    /// moved block (its move ended the sampling countdown).
    #[inline]
    pub(in crate::heap) fn on_move(&self, owner: Tag, old: u64, new: u64) -> bool {
        let budget = self.budget.get();
        if owner.to_bits() == self.lane.get() && new < budget {
            // The lane's allocated bytes are what left its budget (which is at most the
            // countdown: this move did not end it).
            self.budget.set(budget - new);
            self.lane_alloc_blocks.set(self.lane_alloc_blocks.get() + 1);
            self.lane_free_bytes.set(self.lane_free_bytes.get() + old);
            self.lane_free_blocks.set(self.lane_free_blocks.get() + 1);
            false
        } else {
            self.move_slow(owner, old, new)
        }
    }

    /// [`Cache::on_move`] for a block that is not the lane's, or larger than what is left of
    /// its budget. The lane's block is counted in the lane, which then closes (its bytes count
    /// down the sampling countdown) and reopens with a new budget, as an allocation's slow path
    /// does: without that, every later move of the lane's blocks would come here until the
    /// next allocation. A move that ends the countdown draws the next one and samples the
    /// moved block, as an allocation that ends it does. Another tag's block is counted
    /// through the cache, outside the countdown (as its free would be).
    #[cold]
    #[inline(never)]
    fn move_slow(&self, owner: Tag, old: u64, new: u64) -> bool {
        if owner.to_bits() == self.lane.get() {
            // Wraps below zero: `close_lane` takes `armed - budget` as the lane's bytes.
            self.budget.set(self.budget.get().wrapping_sub(new));
            self.lane_alloc_blocks.set(self.lane_alloc_blocks.get() + 1);
            self.lane_free_bytes.set(self.lane_free_bytes.get() + old);
            self.lane_free_blocks.set(self.lane_free_blocks.get() + 1);
            self.close_lane(0);
            // The lane was open: the thread is in a region and not nested.
            let sample = self.draw(true);
            self.open_lane();
            sample
        } else {
            self.count(owner, old, false);
            self.count(owner, new, true);
            false
        }
    }
}
