//! The gRPC services of a node.

mod status;

pub use status::StatusService;
