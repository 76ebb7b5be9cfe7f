// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ordo's log order on an EVM chain.
/// @notice Entry headers are appended in batches; each header gets the next
/// seq, gap-free from 0, and the account the chain authenticated as the
/// transaction's sender is recorded as the submitter of every header in the
/// batch. The contract keeps one word of state (the next seq): the headers
/// live only in the `Appended` events, which every reader follows.
/// @dev What the contract cannot check cheaply (that a geometry is well
/// formed, that shards for a commitment exist, that the submitter may write)
/// readers decide in replay, deterministically, from the headers alone.
contract OrdoLog {
    /// Most headers one call may append: bounds the gas of one transaction
    /// (about 3 M at the largest headers) and the size of one event.
    uint256 public constant MAX_HEADERS_PER_CALL = 256;
    /// Most tags (stream ids) one header may carry, as ordo's log allows.
    uint256 public constant MAX_TAGS = 32;

    /// One entry header as a gateway sends it: the submitter is not part of
    /// it, the chain provides that.
    struct Header {
        bytes32 commitment;
        bytes16 geometry;
        bytes32[] tags;
    }

    /// The seq the next header gets.
    uint64 public next;

    /// `headers` got seqs `first`, `first + 1`, ... in order, sent by
    /// `submitter`.
    event Appended(uint64 indexed first, address indexed submitter, Header[] headers);

    /// An append with no header.
    error NoHeaders();
    /// An append of more than `MAX_HEADERS_PER_CALL` headers.
    error TooManyHeaders(uint256 count);
    /// A header with more than `MAX_TAGS` tags.
    error TooManyTags(uint256 index, uint256 count);

    /// Appends `headers`; returns the seq of the first.
    function append(Header[] calldata headers) external returns (uint64 first) {
        uint256 count = headers.length;
        if (count == 0) revert NoHeaders();
        if (count > MAX_HEADERS_PER_CALL) revert TooManyHeaders(count);
        for (uint256 i = 0; i < count; i++) {
            uint256 tags = headers[i].tags.length;
            if (tags > MAX_TAGS) revert TooManyTags(i, tags);
        }
        first = next;
        next = first + uint64(count);
        emit Appended(first, msg.sender, headers);
    }
}
