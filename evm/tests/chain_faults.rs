//! The EVM sequencer against what a chain does to it: reorgs shallower and
//! deeper than its confirmations, an endpoint that stops answering, a
//! restart after the account's nonce moved on, and a transaction left
//! underpriced by a rising base fee. Each on a fresh anvil.

mod common;

use alloy::providers::Provider;
use common::{Anvil, Miner, SilentProxy};
use ordo_evm::EvmSequencer;
use ordo_log::{EntryDescriptor, EntryHeader, Sequencer, SequencerError, stress};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest anything promised here may take.
const BOUND: Duration = Duration::from_secs(30);

fn descriptor(i: u64) -> EntryDescriptor {
    stress::descriptor(9, 0, i)
}

async fn append(sequencer: &EvmSequencer, i: u64) -> EntryHeader {
    let appended = tokio::time::timeout(BOUND, sequencer.append(descriptor(i))).await;
    appended.expect("append returns").expect("append")
}

/// A sequencer over `settings` that appends as dev account 0.
async fn appender(settings: ordo_evm::EvmSettings) -> EvmSequencer {
    let opened = EvmSequencer::open(settings, Some(Anvil::signer(0))).await;
    opened.expect("the chain answers")
}

/// The seq of every header the sequencer has taken.
async fn seqs(sequencer: &EvmSequencer) -> Vec<u64> {
    all_headers(sequencer).await.iter().map(|h| h.seq).collect()
}

async fn all_headers(sequencer: &EvmSequencer) -> Vec<EntryHeader> {
    sequencer.read(0, 1000).await.expect("read")
}

/// A contract deployed on `anvil`, a sequencer that keeps its followed
/// headers in a directory of its own (kept alive by the first value), and
/// three entries appended through it.
async fn saving_appender_with_three_entries(
    anvil: &Anvil,
) -> (tempfile::TempDir, ordo_evm::EvmSettings, EvmSequencer) {
    let saved = tempfile::tempdir().expect("a directory");
    let mut settings = anvil.deploy().await;
    settings.saved_dir = Some(saved.path().to_path_buf());
    let sequencer = appender(settings.clone()).await;
    for i in 0..3 {
        append(&sequencer, i).await;
    }
    (saved, settings, sequencer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_shallower_than_the_confirmations_changes_nothing_applied() {
    let anvil = common::anvil(&[]);
    let mut settings = anvil.deploy().await;
    settings.confirmations = 3;
    let miner = Miner::start(&anvil, Duration::from_millis(100));
    let sequencer = appender(settings).await;
    for i in 0..3 {
        assert_eq!(append(&sequencer, i).await.seq, i);
    }
    let confirmed = all_headers(&sequencer).await;

    // The two newest blocks, not yet three deep, are replaced.
    anvil.reorg(2).await;
    assert_eq!(append(&sequencer, 3).await.seq, 3, "appends go on");
    assert_eq!(
        all_headers(&sequencer).await[..3],
        confirmed[..],
        "nothing applied changed"
    );

    // An append whose block is dropped before it is confirmed lands again,
    // once: the same signed transaction is broadcast again.
    miner.pause().await;
    let head = anvil.head().await;
    let landed_before = sequencer.stats().transactions.load(Ordering::SeqCst);
    let pending = {
        let sequencer = std::sync::Arc::new(sequencer);
        let appender = sequencer.clone();
        let task = tokio::spawn(async move { appender.append(descriptor(4)).await });
        let deadline = tokio::time::Instant::now() + BOUND;
        while anvil.head().await == head {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the append was never mined"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            anvil.transactions_in(head + 1).await,
            1,
            "the append's block"
        );
        // Once the submitter has its receipt, only the wait for the
        // block's confirmation can notice the block is gone.
        while sequencer.stats().transactions.load(Ordering::SeqCst) == landed_before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the submitter never took its receipt"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anvil.reorg(1).await;
        miner.on.store(true, Ordering::SeqCst);
        let landed = tokio::time::timeout(BOUND, task)
            .await
            .expect("append returns");
        let header = landed.expect("task").expect("append");
        (sequencer, header)
    };
    let (sequencer, header) = pending;
    assert_eq!(header.entry.commitment, descriptor(4).commitment);
    let headers = all_headers(&sequencer).await;
    let copies = headers
        .iter()
        .filter(|h| h.entry.commitment == descriptor(4).commitment)
        .count();
    assert_eq!(copies, 1, "the dropped append is ordered once: {headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_confirmations_stops_the_sequencer() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let sequencer = appender(settings).await;
    for i in 0..2 {
        append(&sequencer, i).await;
    }
    // Automining: each append is a block; both are replaced.
    anvil.reorg(2).await;
    let deadline = tokio::time::Instant::now() + BOUND;
    let stopped = loop {
        match sequencer.wait_beyond(5).await {
            Err(e) => break e,
            Ok(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the reorg went unseen"
            ),
        }
    };
    assert!(
        matches!(&stopped, SequencerError::Poisoned(reason) if reason.contains("reorg")),
        "{stopped}"
    );
    let refused = sequencer.append(descriptor(2)).await.expect_err("stopped");
    assert!(matches!(refused, SequencerError::Poisoned(_)), "{refused}");
    assert_eq!(sequencer.tail(), 2, "what was applied stays as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_stops_answering_delays_appends_and_loses_none() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let sequencer = std::sync::Arc::new(appender(settings).await);
    append(&sequencer, 0).await;
    anvil.signal("STOP");
    let appender = sequencer.clone();
    let task = tokio::spawn(async move { appender.append(descriptor(1)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !task.is_finished(),
        "an append cannot land while the chain is silent"
    );
    anvil.signal("CONT");
    let header = tokio::time::timeout(BOUND, task).await.expect("returns");
    assert_eq!(header.expect("task").expect("append").seq, 1);
    append(&sequencer, 2).await;
    let seqs = seqs(&sequencer).await;
    assert_eq!(seqs, vec![0, 1, 2], "every append once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_the_accounts_nonce_moved_on_appends_again() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let first = EvmSequencer::open(settings.clone(), Some(Anvil::signer(0)))
        .await
        .expect("the chain answers");
    append(&first, 0).await;
    drop(first);
    // Another process with the same key appends meanwhile.
    let other = EvmSequencer::open(settings.clone(), Some(Anvil::signer(0)))
        .await
        .expect("the chain answers");
    append(&other, 1).await;
    drop(other);
    // And a transaction one nonce ahead waits in the pool: a gap.
    let gapped = send_with_nonce_gap(&anvil).await;
    let reopened = appender(settings).await;
    assert_eq!(reopened.tail(), 2, "a restart finds every header");
    assert_eq!(
        append(&reopened, 2).await.seq,
        2,
        "the append fills the gap"
    );
    let provider = anvil.provider();
    let deadline = tokio::time::Instant::now() + BOUND;
    while provider
        .get_transaction_receipt(gapped)
        .await
        .expect("the chain answers")
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gapped transaction never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Broadcasts a transfer from dev account 0 with the nonce after its next
/// one, so that it waits for the one before; returns its hash.
async fn send_with_nonce_gap(anvil: &Anvil) -> alloy::primitives::B256 {
    use alloy::eips::eip2718::Encodable2718;
    use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
    use alloy::providers::Provider;
    let provider = anvil.provider();
    let account = Anvil::signer(0).address();
    let next = provider
        .get_transaction_count(account)
        .pending()
        .await
        .expect("the chain answers");
    let fees = provider
        .estimate_eip1559_fees()
        .await
        .expect("the chain answers");
    let request = alloy::rpc::types::TransactionRequest::default()
        .with_from(account)
        .with_to(account)
        .with_nonce(next + 1)
        .with_chain_id(common::CHAIN_ID)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
    let wallet = EthereumWallet::from(Anvil::signer(0));
    let envelope = request.build(&wallet).await.expect("the chain answers");
    let _ = provider
        .send_raw_transaction(&envelope.encoded_2718())
        .await
        .expect("the chain answers");
    *envelope.tx_hash()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_counts_its_transactions_gas_and_the_chains_progress() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let sequencer = appender(settings).await;
    for i in 0..3 {
        append(&sequencer, i).await;
    }
    let stats = sequencer.stats();
    let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    assert_eq!(read(&stats.headers_sent), 3);
    assert_eq!(
        read(&stats.transactions),
        3,
        "one append at a time: one each"
    );
    assert!(
        read(&stats.gas_used) > 3 * 21_000,
        "each paid more than a transfer"
    );
    assert!(read(&stats.gwei_spent) > 0);
    assert_eq!(read(&stats.pending_appends), 0);
    let head = anvil.head().await;
    assert_eq!(read(&stats.chain_head), head);
    assert_eq!(
        read(&stats.confirmed_block),
        head,
        "one confirmation: the head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_append_transactions_wait_for_one_block_together() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let sequencer = std::sync::Arc::new(appender(settings).await);
    anvil.set_automine(false).await;
    let mut tasks = Vec::new();
    for i in 0..3 {
        let appender = sequencer.clone();
        tasks.push(tokio::spawn(
            async move { appender.append(descriptor(i)).await },
        ));
        // Each append is its own transaction, out before the last is mined.
        let deadline = tokio::time::Instant::now() + BOUND;
        while anvil.pool_pending().await < i + 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "transaction {i} never went out"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    anvil.mine().await;
    let head = anvil.head().await;
    assert_eq!(
        anvil.transactions_in(head).await,
        3,
        "one block carries all three"
    );
    let mut seqs = Vec::new();
    for task in tasks {
        let header = tokio::time::timeout(BOUND, task).await.expect("returns");
        seqs.push(header.expect("task").expect("append").seq);
    }
    assert_eq!(seqs, vec![0, 1, 2], "nonce order is seq order");
}

/// Sets the base fee of the next block anvil mines.
async fn next_base_fee(anvil: &Anvil, wei: u128) {
    let fee = alloy::primitives::U256::from(wei);
    let _: serde_json::Value = (anvil.provider())
        .raw_request("anvil_setNextBlockBaseFeePerGas".into(), (fee,))
        .await
        .expect("anvil_setNextBlockBaseFeePerGas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_underpriced_append_is_signed_again_with_higher_fees_and_lands_once() {
    let anvil = common::anvil(&[]);
    let settings = anvil.deploy().await;
    let sequencer = std::sync::Arc::new(appender(settings).await);
    append(&sequencer, 0).await;
    anvil.set_automine(false).await;
    let appender = sequencer.clone();
    let task = tokio::spawn(async move { appender.append(descriptor(1)).await });
    let deadline = tokio::time::Instant::now() + BOUND;
    while anvil.pool_pending().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the append is sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every block now asks far more than the append offered: as signed
    // first, it never lands.
    let base_fee = 1_000_000_000_000; // 1,000 gwei, ~500 times anvil's start
    while !task.is_finished() {
        assert!(tokio::time::Instant::now() < deadline, "the append lands");
        next_base_fee(&anvil, base_fee).await;
        anvil.mine().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let header = task.await.expect("task").expect("append");
    assert_eq!(header.seq, 1);
    let bumps = sequencer.stats().fee_bumps.load(Ordering::Relaxed);
    assert!(bumps >= 1, "signed again with higher fees: {bumps}");
    let seqs = seqs(&sequencer).await;
    assert_eq!(seqs, vec![0, 1], "one version landed, once");
    anvil.set_automine(true).await;
    append(&sequencer, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_takes_calls_and_never_answers_times_them_out_and_appends_resume() {
    let anvil = common::anvil(&[]);
    let mut settings = anvil.deploy().await;
    let proxy = SilentProxy::start(&anvil.url).await;
    settings.rpc_url = proxy.url.clone();
    settings.rpc_timeout = Duration::from_millis(300);
    let sequencer = std::sync::Arc::new(appender(settings).await);
    append(&sequencer, 0).await;
    proxy.set_silent(true);
    let appender = sequencer.clone();
    let task = tokio::spawn(async move { appender.append(descriptor(1)).await });
    // Long enough for calls on the open connections to have timed out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !task.is_finished(),
        "nothing lands while the endpoint is silent"
    );
    proxy.set_silent(false);
    let header = tokio::time::timeout(BOUND, task).await.expect("returns");
    assert_eq!(header.expect("task").expect("append").seq, 1);
    let seqs = seqs(&sequencer).await;
    assert_eq!(seqs, vec![0, 1], "every append once");
}

/// Waits until `sequencer` has scanned up to the chain's head.
async fn scanned_to_head(anvil: &Anvil, sequencer: &EvmSequencer) {
    let head = anvil.head().await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while sequencer.stats().confirmed_block.load(Ordering::Relaxed) < head {
        assert!(tokio::time::Instant::now() < deadline, "scans to {head}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_saved_headers_reads_only_the_blocks_after_the_last_one_scanned() {
    let anvil = common::anvil(&[]);
    let (_saved, settings, first) = saving_appender_with_three_entries(&anvil).await;
    // Two windows of MAX_LOG_RANGE blocks to read from the start.
    anvil
        .mine_many(2 * ordo_evm::sequencer::MAX_LOG_RANGE)
        .await;
    scanned_to_head(&anvil, &first).await;
    let before = all_headers(&first).await;
    drop(first);

    let reopened = appender(settings.clone()).await;
    assert_eq!(reopened.tail(), 3, "the saved headers are there at once");
    assert_eq!(all_headers(&reopened).await, before);
    let queries = reopened.stats().log_queries.load(Ordering::Relaxed);
    assert!(
        queries <= 1,
        "only the blocks since the last scan: {queries}"
    );
    append(&reopened, 3).await;
    assert_eq!(seqs(&reopened).await, vec![0, 1, 2, 3]);
    drop(reopened);

    // Without them, every window is read again.
    let fresh = EvmSequencer::open(
        ordo_evm::EvmSettings {
            saved_dir: None,
            ..settings
        },
        None,
    )
    .await
    .expect("the chain answers");
    assert_eq!(seqs(&fresh).await, vec![0, 1, 2, 3]);
    let queries = fresh.stats().log_queries.load(Ordering::Relaxed);
    assert!(
        queries >= 2,
        "every window from the contract's block: {queries}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_appends_of_one_transaction_share_their_receipt_lookups() {
    const APPENDS: u64 = 64;
    let anvil = common::anvil(&[]);
    let mut settings = anvil.deploy().await;
    let proxy = SilentProxy::start(&anvil.url).await;
    settings.rpc_url = proxy.url.clone();
    // Each append waits for its header to be four blocks deep, a block
    // every 200 ms: about sixteen polls of 50 ms after its receipt.
    settings.confirmations = 4;
    let sequencer = std::sync::Arc::new(appender(settings).await);
    anvil.set_automine(false).await;
    let _miner = Miner::start(&anvil, Duration::from_millis(200));
    let tasks: Vec<_> = (0..APPENDS)
        .map(|i| {
            let appender = sequencer.clone();
            tokio::spawn(async move { appender.append(descriptor(i)).await })
        })
        .collect();
    for task in tasks {
        let appended = tokio::time::timeout(BOUND, task).await.expect("returns");
        appended.expect("task").expect("append");
    }
    // Looking on its own, every append asked about once a poll while it
    // waited: 529 lookups in one run before they shared (about 8 an
    // append). Shared, a transaction is asked about once a poll: 40-44
    // lookups for 10 transactions here when idle, 148 once on a loaded
    // machine (slower blocks, more polls). The bound sits between, and the
    // appends must have shared transactions for the count to mean sharing.
    let calls = proxy.receipt_calls.load(Ordering::Relaxed);
    let sent = proxy.sent_transactions.load(Ordering::Relaxed);
    assert!(sent < APPENDS, "{sent} transactions for {APPENDS} appends");
    assert!(
        calls < APPENDS * 4,
        "{calls} receipt lookups for {APPENDS} appends in {sent} transactions"
    );
    assert_eq!(seqs(&sequencer).await.len() as u64, APPENDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headers_event_is_found_after_a_restart_and_checks_out_against_the_chain() {
    let anvil = common::anvil(&[]);
    let (_saved, settings, first) = saving_appender_with_three_entries(&anvil).await;
    let followed = first.origin_of(1).await.expect("followed this run");
    let headers = all_headers(&first).await;
    drop(first);
    // Reopened, the headers come from the saved file: the event is found
    // on the chain again, the same one.
    let reopened = appender(settings.clone()).await;
    assert_eq!(reopened.origin_of(1).await.expect("found again"), followed);
    let provider = ordo_evm::http::Endpoint::plain(&anvil.url)
        .provider()
        .expect("a provider");
    let expected = ordo_evm::inclusion::Expected {
        chain_id: settings.chain_id,
        contract: settings.contract,
        confirmations: 1,
    };
    let items = [(headers[1].clone(), followed)];
    ordo_evm::inclusion::check(&provider, expected, &items)
        .await
        .expect("header 1 is where its event says");
    let moved = [(headers[2].clone(), followed)];
    let refused = ordo_evm::inclusion::check(&provider, expected, &moved).await;
    assert!(matches!(
        refused,
        Err(ordo_evm::inclusion::InclusionError::NotThere { seq: 2, .. })
    ));
    let elsewhere = ordo_evm::inclusion::Expected {
        contract: [7; 20].into(),
        ..expected
    };
    assert!(
        ordo_evm::inclusion::check(&provider, elsewhere, &items)
            .await
            .is_err()
    );
    assert!(
        reopened.origin_of(9).await.is_err(),
        "no event carries a seq not ordered"
    );
}
