//! Gateways and replicas over a log ordered by a contract on a chain
//! (anvil, started by the test): two gateways with keys of their own
//! append to one contract, and every replica applies the same headers in
//! the same order to the same digest, each header's submitter the account
//! the chain authenticated. The chain lets anyone append: a stranger's
//! header is passed over unread, so one whose shards exist nowhere stalls
//! no replica, and a node that is no gateway of the log refuses commits.

#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::{MemberProcess, make_certs};
use ordo_client::Client;
use ordo_evm::devchain::{Anvil, CHAIN_ID, DEV_KEYS, deploy, fund, npm_anvil};
use ordo_log::Sequencer;
use ordo_proto::v1::GetStatusResponse;
use ordo_txn::SigningKey;
use ordo_txn::testkit::signing_key as key;
use std::time::Duration;

/// How long a member may take to catch up.
const BOUND: Duration = Duration::from_secs(60);
/// Commits through each gateway.
const COMMITS: u64 = 20;

fn anvil() -> Anvil {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Anvil::start(&npm_anvil(&root), &[])
}

/// The `sequencer = "evm"` lines for the contract at `contract`.
fn chain_config(anvil: &Anvil, contract: alloy_primitives::Address, from_block: u64) -> String {
    format!(
        "sequencer = \"evm\"\n[evm]\nrpc_url = \"{}\"\ncontract = \"{contract}\"\nchain_id = {CHAIN_ID}\nfrom_block = {from_block}\npoll_interval_ms = 50\n",
        anvil.url
    )
}

/// A client member over the chain's log and the storage members `storage`,
/// with a node key made now and funded from anvil's first account (a
/// gateway pays for its appends).
async fn chain_member(
    id: u64,
    dir: &std::path::Path,
    roles: &[&str],
    storage: &[MemberProcess],
    chain: &str,
    anvil: &Anvil,
) -> (MemberProcess, SigningKey) {
    let storage: Vec<&MemberProcess> = storage.iter().collect();
    let member = MemberProcess::new_client(id, dir, roles, &[], &storage);
    member.add_config("data_shards = 2\nparity_shards = 1\n");
    member.add_config(chain);
    std::fs::create_dir_all(&member.data_dir).unwrap();
    let node = ordo_client::keyfile::load_or_create(&member.data_dir.join("node.key")).unwrap();
    let funder = DEV_KEYS[0].parse().unwrap();
    let ether = alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(19u64));
    fund(&anvil.url, funder, node.address(), ether)
        .await
        .unwrap();
    (member, node)
}

/// Waits until `member` has applied every header below `tail`.
async fn applied_through(member: &MemberProcess, tail: u64) -> GetStatusResponse {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut now = status(member).await;
    while now.applied_seq < tail {
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {} lags: {now:?}",
            member.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = status(member).await;
    }
    now
}

/// Makes `gateway` a gateway of the log with `ordo cluster gateway
/// grant`, as the log's admin (the founding gateway `through`, whose node
/// key it uses), and waits until `gateway` itself has applied the grant.
async fn grant_gateway(
    through: &MemberProcess,
    gateway: &MemberProcess,
    account: alloy_primitives::Address,
) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["cluster", "gateway", "grant", "--account"])
        .arg(account.to_string())
        .arg("--endpoint")
        .arg(through.endpoint.as_ref().unwrap())
        .arg("--key")
        .arg(through.data_dir.join("node.key"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed} {output:?}");
    assert!(printed.contains("gateway role granted"), "{printed}");
    let granted_at = status(through).await.applied_seq;
    applied_through(gateway, granted_at).await;
}

/// A stranger, funded by anvil, appends a header for an entry whose shards
/// were never stored anywhere; returns its seq.
async fn stranger_appends(
    anvil: &Anvil,
    contract: alloy_primitives::Address,
    from_block: u64,
) -> u64 {
    let stranger: SigningKey = DEV_KEYS[1].parse().unwrap();
    let settings = anvil.settings(contract, from_block);
    let sequencer = ordo_evm::EvmSequencer::open(settings, Some(stranger))
        .await
        .unwrap();
    let header = sequencer
        .append(ordo_log::stress::descriptor(9, 0, 1))
        .await
        .unwrap();
    header.seq
}

async fn status(member: &MemberProcess) -> GetStatusResponse {
    let client = Client::connect(member.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    client.status().await.unwrap()
}

/// Commits `COMMITS` keys `PREFIX/i` through `member` as `owner`.
async fn write(member: &MemberProcess, owner: &SigningKey, stream: [u8; 32], prefix: &str) {
    let client = Client::connect(member.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    for i in 0..COMMITS {
        let key = format!("{prefix}/{i}");
        client
            .transact(owner, async |tx| {
                tx.put(stream, key.as_bytes(), b"v");
                Ok(())
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_append_to_one_contract_and_every_replica_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let anvil = anvil();
    let (contract, from_block) = deploy(&anvil.url, DEV_KEYS[0].parse().unwrap())
        .await
        .unwrap();
    let chain = chain_config(&anvil, contract, from_block);
    make_certs(dir.path(), &[1, 2, 3, 4, 5, 6]);
    let mut storage: Vec<MemberProcess> = (1..=3)
        .map(|id| MemberProcess::new(id, dir.path(), &["storage"]))
        .collect();
    storage.iter_mut().for_each(MemberProcess::start);
    let gateway_roles = ["gateway", "replica"];
    // The first gateway also repairs the storage members, as its replica
    // follows them and the chain.
    let first_roles = ["gateway", "replica", "repair"];
    let (mut first, first_key) =
        chain_member(4, dir.path(), &first_roles, &storage, &chain, &anvil).await;
    let (mut second, second_key) =
        chain_member(5, dir.path(), &gateway_roles, &storage, &chain, &anvil).await;
    first.start();
    second.start();

    // One stream, written through both gateways at once.
    let owner = key(1);
    let client = Client::connect(first.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    client
        .transact(&owner, async |tx| {
            tx.acl(ordo_txn::AclOp::CreateStream {
                name: b"s".to_vec(),
            });
            Ok(())
        })
        .await
        .unwrap();
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(&owner), b"s");
    // The second node is no gateway of the log yet: it refuses commits
    // rather than append entries every replica would pass over.
    let second_client = Client::connect(second.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let refused = second_client
        .transact(&owner, async |tx| {
            tx.put(stream, b"early", b"v");
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("may not write"), "{refused}");
    grant_gateway(&first, &second, second_key.address()).await;
    tokio::join!(
        write(&first, &owner, stream, "first"),
        write(&second, &owner, stream, "second")
    );

    // A stranger's header for data that exists nowhere, then one more
    // commit: every replica passes over the first and applies the second.
    let foreign = stranger_appends(&anvil, contract, from_block).await;
    write(&first, &owner, stream, "after").await;

    // A replica started now, and both gateways' own replicas, agree.
    let (mut replica, _) =
        chain_member(6, dir.path(), &["replica"], &storage, &chain, &anvil).await;
    replica.start();
    let settings = anvil.settings(contract, from_block);
    let reader = ordo_evm::EvmSequencer::open(settings, None).await.unwrap();
    let tail = reader.tail();
    let mut digests = Vec::new();
    for member in [&first, &second, &replica] {
        let now = applied_through(member, tail).await;
        digests.push((now.applied_seq, now.state_digest));
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    let client = Client::connect(replica.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    for prefix in ["first", "second", "after"] {
        for i in 0..COMMITS {
            let read = client
                .get(stream, format!("{prefix}/{i}").as_bytes())
                .await
                .unwrap();
            assert_eq!(read.as_deref(), Some(&b"v"[..]), "{prefix}/{i}");
        }
    }

    // Every header's submitter is a gateway's account, as the chain
    // authenticated it, but the stranger's; both gateways appended.
    let headers = reader.read(0, tail as usize).await.unwrap();
    let gateways = [
        first_key.address().into_array(),
        second_key.address().into_array(),
    ];
    let stranger: SigningKey = DEV_KEYS[1].parse().unwrap();
    for header in &headers {
        let expected = match header.seq == foreign {
            true => vec![stranger.address().into_array()],
            false => gateways.to_vec(),
        };
        assert!(expected.contains(&header.entry.submitter), "{header:?}");
    }
    for gateway in gateways {
        assert!(
            headers.iter().any(|h| h.entry.submitter == gateway),
            "{gateway:?} appended"
        );
    }
    let page = common::scrape(&replica.metrics).await;
    assert_eq!(
        common::metric(&page, "ordo_replica_entries_skipped_total"),
        1,
        "the stranger's entry, and only it, is passed over: {page}"
    );
    // Status shows where the chain stands, on a gateway and a replica.
    let at_gateway = status(&first).await.chain.expect("the chain's status");
    assert!(
        at_gateway.transactions > 0 && at_gateway.gas_used > 0,
        "{at_gateway:?}"
    );
    assert!(at_gateway.confirmed_block > from_block, "{at_gateway:?}");
    assert_eq!(at_gateway.pending_appends, 0);
    let at_replica = status(&replica).await.chain.expect("the chain's status");
    assert_eq!(at_replica.transactions, 0, "a replica sends nothing");
    assert!(at_replica.head_block >= at_replica.confirmed_block);
    // The gateways' metrics count what the chain did for them.
    let page = common::scrape(&first.metrics).await;
    assert!(
        common::metric(&page, "ordo_chain_headers_sent_total") > 0,
        "{page}"
    );
    assert!(
        common::metric(&page, "ordo_chain_gas_used_total") > 0,
        "{page}"
    );
    assert!(
        common::metric(&page, "ordo_chain_confirmed_block") > from_block,
        "{page}"
    );
    assert_eq!(
        common::metric(&page, "ordo_chain_pending_appends"),
        0,
        "{page}"
    );
    // A storage member wiped and restarted is refilled by repair over the
    // chain-ordered log.
    let wiped = &mut storage[2];
    wiped.stop();
    std::fs::remove_dir_all(&wiped.data_dir).unwrap();
    wiped.start();
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let page = common::scrape(&first.metrics).await;
        if common::metric(&page, "ordo_repair_shards_restored_total") > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no repair: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for member in [&mut first, &mut second, &mut replica] {
        member.stop();
    }
}
