// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ordo's log order on an EVM chain.
/// @notice Entry headers are appended in batches; each header gets the next
/// seq, gap-free from 0, and the account the chain authenticated as the
/// transaction's sender is recorded as the submitter of every header in the
/// batch. The contract keeps one word of state (the next seq): the headers
/// live only in the `Appended` events, which every reader follows.
/// @dev Every header it emits passes ordo's own checks (its geometry's
/// limits, at most `MAX_TAGS` tags), so any account may append and no
/// reader ever meets a header it cannot take. What a contract cannot check
/// (that shards for a commitment exist, that the submitter may write)
/// readers decide in replay.
contract OrdoLog {
    /// Most headers one call may append: bounds the gas of one transaction
    /// (about 3 M at the largest headers) and the size of one event.
    uint256 public constant MAX_HEADERS_PER_CALL = 256;
    /// Most tags (stream ids) one header may carry, as ordo's log allows.
    uint256 public constant MAX_TAGS = 32;
    /// ordo's geometry limits (`ordo_log::limits`): payload bytes, chunk
    /// sizes (a power of two between the two), data and parity shards.
    uint256 public constant MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
    uint256 public constant MIN_CHUNK_SIZE = 256;
    uint256 public constant MAX_CHUNK_SIZE = 1024 * 1024;
    uint256 public constant MAX_DATA_SHARDS = 128;
    uint256 public constant MAX_PARITY_SHARDS = 128;

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
    /// A header whose geometry ordo's log refuses.
    error InvalidGeometry(uint256 index);

    /// Appends `headers`; returns the seq of the first.
    function append(Header[] calldata headers) external returns (uint64 first) {
        uint256 count = headers.length;
        if (count == 0) revert NoHeaders();
        if (count > MAX_HEADERS_PER_CALL) revert TooManyHeaders(count);
        for (uint256 i = 0; i < count; i++) {
            uint256 tags = headers[i].tags.length;
            if (tags > MAX_TAGS) revert TooManyTags(i, tags);
            if (!validGeometry(headers[i].geometry)) revert InvalidGeometry(i);
        }
        first = next;
        next = first + uint64(count);
        emit Appended(first, msg.sender, headers);
    }

    /// Whether `geometry` (ordo's 16 bytes: payload length u64, chunk size
    /// u32, data shards u16, parity shards u16, each little-endian) is
    /// within ordo's limits. Byte swaps by masks: a loop over the bytes
    /// cost about 6,000 gas per header.
    function validGeometry(bytes16 geometry) internal pure returns (bool) {
        uint128 word = uint128(geometry);
        uint256 payload = swap64(uint64(word >> 64));
        uint256 chunk = swap32(uint32(word >> 32));
        uint256 k = swap16(uint16(word >> 16));
        uint256 m = swap16(uint16(word));
        bool chunkOk = chunk >= MIN_CHUNK_SIZE && chunk <= MAX_CHUNK_SIZE && (chunk & (chunk - 1)) == 0;
        return payload <= MAX_PAYLOAD_BYTES && chunkOk && k >= 1 && k <= MAX_DATA_SHARDS && m >= 1
            && m <= MAX_PARITY_SHARDS;
    }

    function swap16(uint16 x) internal pure returns (uint16) {
        return (x >> 8) | (x << 8);
    }

    function swap32(uint32 x) internal pure returns (uint32) {
        x = ((x & 0xff00ff00) >> 8) | ((x & 0x00ff00ff) << 8);
        return (x >> 16) | (x << 16);
    }

    function swap64(uint64 x) internal pure returns (uint64) {
        x = ((x & 0xff00ff00ff00ff00) >> 8) | ((x & 0x00ff00ff00ff00ff) << 8);
        x = ((x & 0xffff0000ffff0000) >> 16) | ((x & 0x0000ffff0000ffff) << 16);
        return (x >> 32) | (x << 32);
    }
}
