//! The compiled contract the crate is built from is what its source
//! compiles to with the pinned solc.

#[test]
fn the_contract_artifact_is_what_its_source_compiles_to() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/evm-contract.sh"))
        .arg("check")
        .status()
        .expect("runs scripts/evm-contract.sh");
    assert!(status.success(), "scripts/evm-contract.sh check failed");
}
