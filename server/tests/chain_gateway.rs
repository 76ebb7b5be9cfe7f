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

/// Anvil with the log's contract deployed: the contract, the block it was
/// deployed in, and the `sequencer = "evm"` lines for members.
async fn chain_log() -> (Anvil, alloy_primitives::Address, u64, String) {
    let anvil = anvil();
    let (contract, from_block) = deploy(&anvil.url, DEV_KEYS[0].parse().unwrap())
        .await
        .unwrap();
    let chain = chain_config(&anvil, contract, from_block);
    (anvil, contract, from_block, chain)
}

/// Storage members 1..=`count`, started.
fn storage_members(dir: &std::path::Path, count: u64) -> Vec<MemberProcess> {
    let mut storage: Vec<MemberProcess> = (1..=count)
        .map(|id| MemberProcess::new(id, dir, &["storage"]))
        .collect();
    storage.iter_mut().for_each(MemberProcess::start);
    storage
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
    let node = funded_node_key(&member, anvil).await;
    (member, node)
}

/// `member`'s node key, made now and funded from anvil's first account.
async fn funded_node_key(member: &MemberProcess, anvil: &Anvil) -> SigningKey {
    std::fs::create_dir_all(&member.data_dir).unwrap();
    let node = ordo_client::keyfile::load_or_create(&member.data_dir.join("node.key")).unwrap();
    let funder = DEV_KEYS[0].parse().unwrap();
    let ether = alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(19u64));
    fund(&anvil.url, funder, node.address(), ether)
        .await
        .unwrap();
    node
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
    let (anvil, contract, from_block, chain) = chain_log().await;
    make_certs(dir.path(), &[1, 2, 3, 4, 5, 6]);
    let mut storage = storage_members(dir.path(), 3);
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

/// The miner of a chain-ordered log: storage, gateway and replica in one
/// member over the chain, storing shards beside `storage`, with a funded
/// node key and a `[mining]` table crediting `beneficiary`.
async fn chain_miner(
    dir: &std::path::Path,
    storage: &[MemberProcess],
    chain: &str,
    anvil: &Anvil,
    beneficiary: &str,
) -> MemberProcess {
    let mut miner = MemberProcess::new(3, dir, &["storage", "gateway", "replica"]);
    let listen = format!("127.0.0.1:{}", common::cluster::free_port());
    let members: Vec<&MemberProcess> = storage.iter().chain([&miner]).collect();
    let text = common::cluster::log_members(&[], &members);
    miner.add_config(&format!(
        "listen = \"{listen}\"\ndata_shards = 2\nparity_shards = 1\n{text}"
    ));
    miner.add_config(chain);
    miner.add_config(&format!(
        "[mining]\nbeneficiary = \"{beneficiary}\"\ncpu_share = 1.0\n"
    ));
    miner.endpoint = Some(format!("http://{listen}"));
    funded_node_key(&miner, anvil).await;
    miner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_stores_shards_mines_on_a_chain_ordered_log_and_replicas_agree() {
    const BENEFICIARY: &str = "0xbebebebebebebebebebebebebebebebebebebebe";
    let dir = tempfile::tempdir().unwrap();
    let (anvil, contract, from_block, chain) = chain_log().await;
    make_certs(dir.path(), &[1, 2, 3, 4, 5]);
    let storage = storage_members(dir.path(), 2);
    let mut miner = chain_miner(dir.path(), &storage, &chain, &anvil, BENEFICIARY).await;
    miner.start();
    let endpoint = miner.endpoint.clone().unwrap();
    let admin = miner.data_dir.join("node.key");
    let admin = admin.to_str().unwrap();
    common::stdout(&common::configure_mining(&endpoint, admin, [4, 16, 32, 5]));
    common::register_times(&endpoint, &dir.path().join("other.key"), 4, BENEFICIARY);
    let deadline = tokio::time::Instant::now() + BOUND;
    while common::mine_status(&endpoint, admin)["miner"]["rewards"] == "0" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reward within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    miner.stop();

    // Two replicas over the chain and the other storage members agree.
    let settings = anvil.settings(contract, from_block);
    let tail = ordo_evm::EvmSequencer::open(settings, None)
        .await
        .unwrap()
        .tail();
    let mut seen = Vec::new();
    for id in [4, 5] {
        let (mut replica, _) =
            chain_member(id, dir.path(), &["replica"], &storage, &chain, &anvil).await;
        replica.start();
        let now = applied_through(&replica, tail).await;
        let ledger =
            common::mine_status(replica.endpoint.as_ref().unwrap(), admin)["miner"].clone();
        seen.push((now.applied_seq, now.state_digest, ledger));
    }
    assert_eq!(seen[0], seen[1], "the replicas agree");
    assert_ne!(
        seen[0].2["rewards"], "0",
        "and the ledger holds the rewards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_on_a_chain_ordered_log_has_a_certificate_its_events_prove() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, contract, _, chain) = chain_log().await;
    make_certs(dir.path(), &[1, 2, 3, 4]);
    let storage = storage_members(dir.path(), 3);
    let roles = ["gateway", "replica"];
    let (mut gateway, _) = chain_member(4, dir.path(), &roles, &storage, &chain, &anvil).await;
    gateway.start();
    let client = Client::connect(gateway.endpoint.as_ref().unwrap())
        .await
        .unwrap();
    let blob = common::blob_of(300_000, 7);
    let id = common::disperse_and_wait(&client, &key(95), &blob).await;
    let (bytes, signed_by) = client.certificate(id, None).await.unwrap();
    assert!(
        signed_by.is_empty(),
        "the chain's events prove the order, not keys"
    );
    let (cert, file) = (dir.path().join("blob.cert"), dir.path().join("blob.bin"));
    std::fs::write(&cert, &bytes).unwrap();
    std::fs::write(&file, blob.as_slice()).unwrap();
    let contract = contract.to_string();
    let verify = |cert: &std::path::Path| {
        common::ordo(&[
            "da",
            "verify",
            cert.to_str().unwrap(),
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--blob",
            file.to_str().unwrap(),
            "--json",
        ])
    };
    let verified: serde_json::Value =
        serde_json::from_str(&common::stdout(&verify(&cert))).unwrap();
    assert_eq!(verified["valid"], true);
    // A forger moves a part's header: the chain's event disagrees.
    let mut forged = ordo_da::Certificate::decode(&bytes).unwrap();
    let mut header = ordo_log::EntryHeader::decode(&forged.headers[0]).unwrap();
    header.entry.submitter = [9; 20];
    forged.headers[0] = header.encode();
    let forged_path = dir.path().join("forged.cert");
    std::fs::write(&forged_path, forged.encode()).unwrap();
    let refused = verify(&forged_path);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("another header"), "{why}");
    // Keys are no proof for a chain's certificate.
    let keys = common::ordo(&[
        "da",
        "verify",
        cert.to_str().unwrap(),
        "--signer",
        &contract,
    ]);
    assert!(String::from_utf8_lossy(&keys.stderr).contains("--rpc and --contract"));
}
