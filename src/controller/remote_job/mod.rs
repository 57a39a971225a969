//! RemoteJob controller. `plan.rs` holds every decision; this module will hold the IO.

pub mod plan;
