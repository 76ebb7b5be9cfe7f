//! The contract takes appends from any account, and refuses exactly the
//! headers ordo's log refuses, so no reader ever meets a header it cannot
//! take.

mod common;

use alloy::network::EthereumWallet;
use alloy::primitives::{FixedBytes, U256};
use common::Anvil;
use ordo_evm::EvmSequencer;
use ordo_evm::contract::OrdoLog;
use ordo_log::limits::{
    MAX_CHUNK_SIZE, MAX_DATA_SHARDS, MAX_PARITY_SHARDS, MAX_PAYLOAD_BYTES, MAX_TAGS, MIN_CHUNK_SIZE,
};
use ordo_log::{Geometry, Sequencer};

/// Geometries at and past every limit: (payload, chunk, k, m).
const CASES: [(u64, u32, u16, u16); 14] = [
    (1000, 4096, 4, 2),
    (0, 256, 1, 1),
    (
        MAX_PAYLOAD_BYTES,
        MAX_CHUNK_SIZE,
        MAX_DATA_SHARDS,
        MAX_PARITY_SHARDS,
    ),
    (MAX_PAYLOAD_BYTES + 1, 4096, 4, 2),
    (u64::MAX, 4096, 4, 2),
    (1000, MIN_CHUNK_SIZE / 2, 4, 2),
    (1000, MAX_CHUNK_SIZE * 2, 4, 2),
    (1000, 4095, 4, 2),
    (1000, 0, 4, 2),
    (1000, 4096, 0, 2),
    (1000, 4096, 4, 0),
    (1000, 4096, MAX_DATA_SHARDS + 1, 2),
    (1000, 4096, 4, MAX_PARITY_SHARDS + 1),
    (1000, u32::MAX, u16::MAX, u16::MAX),
];

fn header(geometry: [u8; 16], tags: usize) -> OrdoLog::Header {
    OrdoLog::Header {
        commitment: FixedBytes([7; 32]),
        geometry: FixedBytes(geometry),
        tags: vec![FixedBytes([1; 32]); tags],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_account_appends_and_the_contract_refuses_exactly_what_ordo_refuses() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let stranger = ordo_evm::http::Endpoint::plain(&anvil.url)
        .signing_provider(EthereumWallet::from(Anvil::signer(1)))
        .expect("anvil's url");
    let contract = OrdoLog::new(settings.contract, &stranger);
    let limits = [
        (contract.MAX_TAGS().call().await, MAX_TAGS as u64),
        (contract.MAX_PAYLOAD_BYTES().call().await, MAX_PAYLOAD_BYTES),
        (
            contract.MIN_CHUNK_SIZE().call().await,
            u64::from(MIN_CHUNK_SIZE),
        ),
        (
            contract.MAX_CHUNK_SIZE().call().await,
            u64::from(MAX_CHUNK_SIZE),
        ),
        (
            contract.MAX_DATA_SHARDS().call().await,
            u64::from(MAX_DATA_SHARDS),
        ),
        (
            contract.MAX_PARITY_SHARDS().call().await,
            u64::from(MAX_PARITY_SHARDS),
        ),
    ];
    for (on_chain, ordo) in limits {
        assert_eq!(
            on_chain.expect("a constant"),
            U256::from(ordo),
            "the contract's limits are ordo's"
        );
    }

    for (payload_len, chunk_size, data_shards, parity_shards) in CASES {
        let geometry = Geometry {
            payload_len,
            chunk_size,
            data_shards,
            parity_shards,
        };
        let ordo_takes = Geometry::from_bytes(&geometry.to_bytes()).is_ok();
        let call = contract.append(vec![header(geometry.to_bytes(), 0)]);
        match call.call().await {
            Ok(_) => assert!(
                ordo_takes,
                "the contract took {geometry:?}, which ordo refuses"
            ),
            Err(e) => {
                assert!(
                    !ordo_takes,
                    "the contract refused {geometry:?}, which ordo takes: {e}"
                );
                assert!(
                    e.as_decoded_error::<OrdoLog::InvalidGeometry>().is_some(),
                    "{e}"
                );
            }
        }
    }
    let good = Geometry {
        payload_len: 1000,
        chunk_size: 4096,
        data_shards: 4,
        parity_shards: 2,
    };
    let refused = contract
        .append(vec![header(good.to_bytes(), MAX_TAGS + 1)])
        .call()
        .await;
    let refused = refused.expect_err("too many tags");
    assert!(
        refused.as_decoded_error::<OrdoLog::TooManyTags>().is_some(),
        "{refused}"
    );

    // A stranger's well-formed header is ordered, with the stranger as its
    // submitter: the chain authenticated it.
    let sent = contract
        .append(vec![header(good.to_bytes(), 1)])
        .send()
        .await;
    sent.expect("sent").get_receipt().await.expect("mined");
    let reader = EvmSequencer::open(settings, None).await.expect("opens");
    let headers = reader.read(0, 10).await.expect("read");
    assert_eq!(headers.len(), 1);
    assert_eq!(
        headers[0].entry.submitter,
        Anvil::signer(1).address().into_array()
    );
}
