//! One `PutMany` stream to a storage member, shared by every shard put a
//! gateway sends it.
//!
//! A unary `Put` costs each shard a stream of its own on the connection:
//! request headers, response headers and trailers, each encoded, sent and
//! parsed on both sides, on top of the shard itself. On a long-lived
//! stream ([`ordo_proto::pipe`]) a put is one message each way. The member
//! answers puts in the order they came (`answer_puts` in the shard
//! service), which is what the pipe needs to match answers to callers.

use ordo_proto::cluster::v1::shards_client::ShardsClient;
use ordo_proto::cluster::v1::{PutShardAnswer, PutShardRequest};
use ordo_proto::pipe::Pipe;
use tonic::transport::Channel;

/// What a put came to: `Ok` once the shard is durable on the member.
type Answer = Result<(), String>;

/// The put stream to one member, opened at the first put and again after
/// it ends.
pub struct PutPipe {
    pipe: Pipe<PutShardRequest, PutShardAnswer>,
    /// How long one put may wait for its answer.
    timeout: std::time::Duration,
}

impl PutPipe {
    /// A pipe over `client`, which must not time its calls out: the
    /// stream lives as long as the member answers; each put waits at most
    /// `timeout` for its answer.
    pub fn new(client: ShardsClient<Channel>, timeout: std::time::Duration) -> Self {
        let pipe = Pipe::new(move |requests| {
            let mut client = client.clone();
            async move { Ok(client.put_many(requests).await?.into_inner()) }
        });
        Self { pipe, timeout }
    }

    /// Stores one shard on the member: durable when this returns `Ok`.
    pub async fn put(&self, request: PutShardRequest) -> Answer {
        match self.pipe.call(request, self.timeout).await {
            Ok(answer) => outcome(answer),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A member's answer as the caller sees it.
fn outcome(answer: PutShardAnswer) -> Answer {
    match tonic::Code::from_i32(answer.code) {
        tonic::Code::Ok => Ok(()),
        code => Err(format!("{code:?}: {}", answer.message)),
    }
}
