# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Open the rosbag2 bags people record, as they are, with `rosbags` underneath (no ROS needed).

    with BagReader("demo_000") as bag:           # a bag directory, a bare .mcap / .db3 file,
        print(bag.listing())                     # a directory of split files without
        for topic, msgtype, t_ns, raw in bag.messages(["/points"]):   # metadata.yaml, or a
            msg = bag.deserialize(raw, msgtype)  # ROS 1 .bag (read-only: `bag info`)
    print(format_bag_info(bag_info("demo_000")))  # what `sdm bag info` prints

What this layer adds to rosbags' `Reader`, each for a bag found in the wild
(../shared/external/SOURCES.md):

- Messages are read through the storage's own connections. rosbags' directory reader matches
  metadata.yaml's topics to the storage's by QoS too, so a bag whose metadata QoS differs from
  the db3 / mcap (rosbag2's own `talker` test bag) yields none of its messages.
- Bare `.mcap` / `.db3` files, and directories holding storage files but no metadata.yaml
  (split bags after a crash), are read file by file and merged in time order.
- Legacy type names (`sensor_msgs/Image`, Dashing) are normalised to `sensor_msgs/msg/Image`.
- Message definitions are parsed per topic: a topic whose definition does not parse (service
  events in mcap) is marked with the reason and the other topics stay readable. Types the bag
  does not define come from the typestore of the bag's distro (or `typestore`) and
  `custom_types`.
- Every message read is counted per topic, so a caller can compare with the bag's own count.

Errors are `BagError`s that name the bag (and its files) and say what to do.
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sdm_policy_core.config import ConfigError
from sdm_policy_core.conversions import ConversionError

TYPESTORES = {"humble": "ROS2_HUMBLE", "jazzy": "ROS2_JAZZY", "kilted": "ROS2_KILTED"}
STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
HEADER_TYPE = "std_msgs/msg/Header"
ROS1_SUFFIX = ".bag"
ROS1_MAGIC = b"#ROSBAG V2.0"
# Durations at or above this mean "infinite / unset" in rosbag2's QoS (int32 or int64 seconds).
QOS_INFINITE_S = 2_147_483_647
IDL_SEPARATOR = "=" * 80 + "\n"  # between the IDL files of one mcap schema


class BagError(ValueError):
    """A bag cannot be converted (missing topic, wrong type, unreadable file).

    The message names the bag and what to fix.
    """


def normalize_msgtype(name: str) -> str:
    """'sensor_msgs/Image' (ROS 1, Dashing) -> 'sensor_msgs/msg/Image'; others unchanged."""
    parts = name.split("/")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/msg/{parts[1]}"
    return name


def read_metadata(path: Path) -> dict[str, Any]:
    """Read the rosbag2_bagfile_information of a bag directory ({} when missing, unreadable)."""
    meta = path / "metadata.yaml"
    if not meta.is_file():
        return {}
    try:
        info = yaml.safe_load(meta.read_text()) or {}
        return dict(info["rosbag2_bagfile_information"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError, OSError):
        return {}


def make_typestore(name: str, distro: str | None, custom_types: Mapping[str, str]) -> Any:
    """Build the rosbags typestore for bags without definitions.

    `name` (humble | jazzy | kilted), or for 'auto' the bag's distro when it is one of those,
    else kilted; plus `custom_types` ({'pkg/msg/Name': .msg text}).
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    if name == "auto":
        distro = (distro or "kilted").lower()
        name = distro if distro in TYPESTORES else "kilted"
    store = get_typestore(getattr(Stores, TYPESTORES[name]))
    for msgtype, text in custom_types.items():
        try:
            store.register(get_types_from_msg(text, msgtype))
        except Exception as err:  # rosbags parser errors have no common base
            raise ConfigError(f"custom_types[{msgtype!r}] is not valid .msg text: {err}") from None
    return store


def type_closure(fielddefs: dict, roots: Sequence[str]) -> dict:
    """Collect the definitions of `roots` and of every type they use (a rosbags Typesdict)."""
    out: dict = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out or name not in fielddefs:
            continue
        out[name] = fielddefs[name]
        todo += [n for n in _names_in(fielddefs[name]) if n not in out]
    return out


def _names_in(definition: Any) -> list[str]:
    """Message type names referenced by a rosbags field definition (nested)."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, tuple):
            if len(node) == 2 and getattr(node[0], "name", None) == "NAME":
                names.append(node[1])
                return
            for item in node:
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(definition[1])
    return names


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _corrupt(path: Path, err: BaseException) -> BagError:
    files = ""
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.name != "metadata.yaml")
        files = f" (file{'s' if len(names) != 1 else ''} {', '.join(names)})"
    return BagError(
        f"cannot read bag {path}{files}: {type(err).__name__}: {err} (the bag is truncated, "
        f"corrupt or not a rosbag2 bag)"
    )


def _natural_key(path: Path) -> list[Any]:
    """'bag_10.mcap' after 'bag_9.mcap'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _is_ros1_file(path: Path) -> bool:
    if path.suffix == ROS1_SUFFIX:
        return True
    try:
        with path.open("rb") as f:
            return f.read(len(ROS1_MAGIC)) == ROS1_MAGIC
    except OSError:
        return False


def qos_to_dict(qos: Any) -> dict[str, Any]:
    """Convert a rosbags Qos -> JSON values (enum names in lower case, durations {sec, nsec})."""
    out: dict[str, Any] = {}
    for key, value in qos._asdict().items():
        if hasattr(value, "name"):
            value = value.name.lower()
        elif hasattr(value, "_asdict"):
            value = dict(value._asdict())
        out[key] = value
    return out


def qos_summary(profiles: Sequence[Any]) -> str:
    """'reliable, transient_local, keep_last 10, lifespan 10 s' for the first offered profile."""
    if not profiles:
        return "-"
    qos = profiles[0]
    parts = [qos.reliability.name.lower(), qos.durability.name.lower()]
    history = qos.history.name.lower()
    parts.append(f"{history} {qos.depth}" if history == "keep_last" else history)
    for name in ("deadline", "lifespan"):
        value = getattr(qos, name)
        if 0 < value.sec < QOS_INFINITE_S or (value.sec == 0 and value.nsec > 0):
            parts.append(f"{name} {value.sec + value.nsec / 1e9:g} s")
    if len(profiles) > 1:
        parts.append(f"+{len(profiles) - 1} more profile{'s' if len(profiles) > 2 else ''}")
    return ", ".join(parts)


def _qos_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    """Names of the QoS fields that differ between two offered-profile lists."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} profiles"
    names = [
        k for x, y in zip(a, b, strict=True) for k in x._fields if getattr(x, k) != getattr(y, k)
    ]
    return ", ".join(dict.fromkeys(names)) or "none"


@dataclass
class BagTopic:
    """One topic of a bag.

    msgtype: normalised type name ('pkg/msg/Name'); recorded_type: as the bag writes it.
    declared: message count the bag declares (metadata.yaml, else the storage's index).
    qos: offered QoS profiles as the storage holds them (rosbags Qos tuples).
    problem: why its messages cannot be decoded (definition, serialisation), else None.
    connections: the rosbags connections its messages are read through (storage level).
    """

    name: str
    msgtype: str
    recorded_type: str
    serialization: str
    declared: int | None
    qos: list[Any] = field(default_factory=list)
    problem: str | None = None
    connections: list[Any] = field(default_factory=list)


class BagReader:
    """An open bag: a rosbag2 directory, a bare `.mcap` / `.db3` file, or a ROS 1 `.bag`.

    A rosbag2 directory (metadata.yaml; one or several storage files), a bare `.mcap` / `.db3`
    file, a directory of storage files without metadata.yaml, or a ROS 1 `.bag` (`ros1`:
    listed and counted, but messages are ROS 1 serialised, not CDR).

    typestore: auto | humble | jazzy | kilted, for types the bag does not define.
    custom_types: {'pkg/msg/Name': .msg text} added to that typestore.
    """

    def __init__(
        self,
        path: str | Path,
        typestore: str = "auto",
        custom_types: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.notes: list[str] = []  # bag-level warnings
        self.read_counts: Counter[str] = Counter()  # messages read per topic so far
        self.ros1 = False
        self.metadata = read_metadata(self.path) if self.path.is_dir() else {}
        self._readers: list[Any] = []
        self._stack = contextlib.ExitStack()
        files = self._locate()
        self.files = [f.name for f in files]
        distro = str(self.metadata.get("ros_distro") or "") or None
        self.distro = "ROS 1" if self.ros1 else distro
        self.default_store = make_typestore(typestore, distro, custom_types or {})
        try:
            self._open(files)
            self.typestore = self._build_typestore()
        except BagError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise _corrupt(self.path, err) from None

    # -- opening ---------------------------------------------------------------------------------

    def _locate(self) -> list[Path]:
        """Find the storage files to read; set the layout. BagError when there is no bag here."""
        path = self.path
        if not path.exists():
            raise BagError(f"bag {path} does not exist")
        if path.is_file():
            if _is_ros1_file(path):
                self.ros1, self.layout, self.storage = True, "ROS 1 bag file", "rosbag1"
                return [path]
            if path.suffix not in STORAGE_SUFFIXES:
                raise BagError(
                    f"{path} is not a bag file: give a rosbag2 bag directory, a .mcap or .db3 "
                    f"file, or a ROS 1 .bag file"
                )
            self.layout, self.storage = "bare file", STORAGE_SUFFIXES[path.suffix]
            return [path]
        if (path / "metadata.yaml").is_file():
            self._check_serialization()
            self.layout = "directory"
            self.storage = str(self.metadata.get("storage_identifier") or "?")
            names = self.metadata.get("relative_file_paths") or []
            return [path / Path(str(n)).name for n in names]
        files = sorted(
            (p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file()),
            key=_natural_key,
        )
        if not files:
            ros1 = sorted(p.name for p in path.iterdir() if p.suffix == ROS1_SUFFIX)
            hint = (
                f"; it holds ROS 1 bags ({', '.join(ros1)}): give the .bag files"
                if ros1
                else ": give the bag directory (or a single .mcap / .db3 file)"
            )
            raise BagError(
                f"{path} is not a rosbag2 bag (no metadata.yaml, no .mcap or .db3){hint}"
            )
        self.layout = "directory without metadata.yaml"
        self.storage = "+".join(sorted({STORAGE_SUFFIXES[f.suffix] for f in files}))
        self.notes.append(
            f"no metadata.yaml: read {len(files)} storage file{'s' if len(files) > 1 else ''} "
            f"({', '.join(f.name for f in files)}) and merged them in time order"
        )
        return files

    def _check_serialization(self) -> None:
        formats: dict[str, list[str]] = {}
        for entry in self.metadata.get("topics_with_message_count") or []:
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                meta = entry["topic_metadata"]
                fmt = str(meta.get("serialization_format") or "cdr")
                if fmt != "cdr":
                    formats.setdefault(fmt, []).append(str(meta["name"]))
        if formats:
            what = "; ".join(f"{fmt!r} ({', '.join(topics)})" for fmt, topics in formats.items())
            raise BagError(
                f"bag {self.path}: messages are serialised as {what}, which nothing here can "
                f"decode; only CDR (rosbag2's format with every standard ROS 2 rmw) is read: "
                f"record the bag again with a CDR rmw (Fast DDS, Cyclone DDS, Zenoh)"
            )

    def _open(self, files: list[Path]) -> None:
        from rosbags.interfaces import ConnectionExtRosbag2

        if self.ros1:
            from rosbags.rosbag1 import Reader as Ros1Reader

            readers = [Ros1Reader(files[0])]
        else:
            from rosbags.rosbag2 import Reader

            readers = (
                [Reader(self.path)] if self.layout == "directory" else [Reader(f) for f in files]
            )
        for reader in readers:
            reader.open()
            self._stack.callback(reader.close)
            self._readers.append(reader)
        # (name, recorded type) -> storage-level connections, and the counts the bag declares.
        declared: dict[str, int] = Counter()
        storage_conns: list[Any] = []
        meta: dict[str, Any] = {}  # metadata.yaml's connection of each topic
        for reader in self._readers:
            storages = getattr(getattr(reader, "storage", None), "storages", None)
            if storages is not None:  # a directory: metadata.yaml connections + storage files
                for conn in reader.connections:
                    declared[conn.topic] += int(conn.msgcount)
                    meta.setdefault(conn.topic, conn)
                storage_conns += [c for s in storages for c in s.connections]
            else:
                for conn in reader.connections:
                    declared[conn.topic] += int(conn.msgcount)
                storage_conns += list(reader.connections)
        self.topics: dict[str, BagTopic] = {}
        for conn in storage_conns:
            ext = conn.ext
            is2 = isinstance(ext, ConnectionExtRosbag2)
            topic = self.topics.get(conn.topic)
            if topic is None:
                topic = self.topics[conn.topic] = BagTopic(
                    conn.topic,
                    normalize_msgtype(conn.msgtype),
                    conn.msgtype,
                    ext.serialization_format if is2 else "ros1",
                    declared.get(conn.topic),
                    list(ext.offered_qos_profiles) if is2 else [],
                )
            elif normalize_msgtype(conn.msgtype) != topic.msgtype:
                topic.problem = (
                    f"recorded with several types ({topic.msgtype}, "
                    f"{normalize_msgtype(conn.msgtype)})"
                )
            topic.connections.append(conn)
            if is2 and ext.serialization_format != "cdr":
                topic.problem = f"serialised as {ext.serialization_format!r}, not CDR"
        for name, conn in meta.items():
            topic = self.topics.get(name)
            if topic is None:  # declared in metadata.yaml, absent from every storage file
                self.topics[name] = BagTopic(
                    name,
                    normalize_msgtype(conn.msgtype),
                    conn.msgtype,
                    conn.ext.serialization_format,
                    declared[name],
                    list(conn.ext.offered_qos_profiles),
                    problem="declared in metadata.yaml but in no storage file",
                )
                continue
            stored = [c.ext for c in topic.connections]
            if conn.ext not in stored:
                difference = _qos_difference(
                    conn.ext.offered_qos_profiles, stored[0].offered_qos_profiles
                )
                self.notes.append(
                    f"{name}: metadata.yaml's QoS differs from the storage's ({difference}); "
                    f"rosbags' own reader would skip its messages: read through the storage's "
                    f"connection"
                )
        if self.layout != "directory":
            distros = {r.ros_distro for r in self._readers if getattr(r, "ros_distro", None)}
            if distros and not self.ros1:
                self.distro = "+".join(sorted(distros))
        if self.layout == "directory":
            mode = str(self.metadata.get("compression_mode") or "").lower()
            fmt = str(self.metadata.get("compression_format") or "")
            self.compression = f"{fmt} ({mode})" if mode and mode != "none" else "none"
        else:
            self.compression = "none"

    def _build_typestore(self) -> Any:
        """Collect the bag's own definitions, then the default typestore's for the types it lacks.

        The bag's own definitions, topic by topic (a topic whose definition does not parse or
        whose type hash disagrees gets a `problem`), then the default typestore's for the
        types it lacks.
        """
        from rosbags.interfaces import MessageDefinitionFormat
        from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

        store = get_typestore(Stores.EMPTY)
        done: set[tuple[str, Any]] = set()
        for topic in self.topics.values():
            if topic.problem:
                continue
            for conn in topic.connections:
                msgdef = conn.msgdef
                if (
                    msgdef.format == MessageDefinitionFormat.NONE
                    or (topic.msgtype, msgdef) in done
                ):
                    continue
                try:
                    if msgdef.format == MessageDefinitionFormat.MSG:
                        types = get_types_from_msg(msgdef.data, topic.msgtype)
                    elif msgdef.data.startswith(IDL_SEPARATOR + "IDL: "):  # as AnyReader does
                        types = {}
                        for part in msgdef.data.split(IDL_SEPARATOR)[1:]:
                            types.update(get_types_from_idl(part.split("\n", 1)[1]))
                    else:
                        types = get_types_from_idl(msgdef.data)
                    store.register(types)
                    done.add((topic.msgtype, msgdef))
                except Exception as err:  # parser / conflict errors of rosbags
                    topic.problem = (
                        f"its message definition in the bag does not parse ({_first_line(err)})"
                    )
                    break
        for topic in self.topics.values():
            if topic.problem or topic.msgtype in store.fielddefs:
                continue
            if topic.msgtype not in self.default_store.fielddefs:
                topic.problem = (
                    f"the bag has no definition of {topic.msgtype} and the typestore does not "
                    f"know it: add it to custom_types in the config (.msg text)"
                )
                continue
            needed = type_closure(self.default_store.fielddefs, [topic.msgtype])
            store.register({k: v for k, v in needed.items() if k not in store.fielddefs})
        if not self.ros1:
            for topic in self.topics.values():
                digests = {c.digest for c in topic.connections if c.digest}
                if topic.problem or not digests:
                    continue
                try:
                    have = store.hash_rihs01(topic.msgtype)
                except Exception as err:
                    topic.problem = f"cannot hash its definition ({_first_line(err)})"
                    continue
                if have not in digests:
                    topic.problem = (
                        f"type hash {sorted(digests)[0]} in the bag differs from the definition "
                        f"used ({have}): set typestore to the distro that recorded it"
                    )
        return store

    # -- use -------------------------------------------------------------------------------------

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a corrupt bag may fail again
            self._stack.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def declared_total(self) -> int:
        return sum(t.declared or 0 for t in self.topics.values())

    def listing(self) -> str:
        return ", ".join(
            f"{t.name} ({t.msgtype}, {t.declared or 0} msgs)"
            for t in sorted(self.topics.values(), key=lambda t: t.name)
        )

    def find(self, topic: str) -> str | None:
        """Return the bag's name of `topic` ('points' matches '/points'), None when it has none."""
        candidates = [topic, "/" + topic.lstrip("/"), topic.lstrip("/")]
        return next((c for c in candidates if c in self.topics), None)

    def resolve(self, topic: str, role: str, types: Sequence[str] | None = None) -> str:
        """Return the bag's name of `topic` ('points' matches '/points'), checked.

        BagError when missing, of a type not in `types`, or undecodable.
        """
        name = self.find(topic)
        if name is None:
            raise BagError(
                f"bag {self.path} has no topic {topic!r} ({role}); its topics are: "
                f"{self.listing() or 'none'}"
            )
        info = self.topics[name]
        if types is not None and info.msgtype not in types:
            raise BagError(
                f"bag {self.path}: topic {name} ({role}) has type {info.msgtype}, expected "
                f"{' or '.join(types)}"
            )
        self.require_decodable([name], role)
        return name

    def require_decodable(self, topics: Iterable[str], role: str = "") -> None:
        """BagError naming the first of `topics` whose messages cannot be decoded."""
        for name in topics:
            problem = self.topics[name].problem
            if problem:
                what = f" ({role})" if role else ""
                raise BagError(f"bag {self.path}: topic {name}{what} cannot be read: {problem}")

    def undecodable(self, used: Iterable[str] = ()) -> dict[str, str]:
        """{topic: problem} of the topics not in `used` whose messages cannot be decoded."""
        used = set(used)
        return {
            n: t.problem for n, t in sorted(self.topics.items()) if t.problem and n not in used
        }

    def messages(
        self, topics: Sequence[str] | None = None
    ) -> Iterator[tuple[str, str, int, bytes]]:
        """Yield (topic, normalised msgtype, log time ns, raw bytes) in log-time order.

        In log-time order of each file, merged across files without metadata.yaml; counted in
        `read_counts`; reading errors become a BagError naming the file.
        """
        wanted = set(self.topics if topics is None else topics)
        conns = [c for t in wanted if t in self.topics for c in self.topics[t].connections]
        if not conns:
            return
        types = {t: self.topics[t].msgtype for t in wanted if t in self.topics}
        if len(self._readers) == 1:
            reader = self._readers[0]
            source = getattr(reader, "storage", reader)
            iterator = (
                source.messages(conns) if hasattr(source, "storages") else reader.messages(conns)
            )
        else:
            own = [[c for c in conns if c.owner is r.storage] for r in self._readers]
            iterator = heapq.merge(
                *(r.messages(c) for r, c in zip(self._readers, own, strict=True) if c),
                key=lambda item: item[1],
            )
        counts = self.read_counts
        while True:
            try:
                connection, timestamp, raw = next(iterator)
            except StopIteration:
                return
            except Exception as err:
                raise _corrupt(self.path, err) from None
            topic = connection.topic
            counts[topic] += 1
            yield topic, types[topic], int(timestamp), raw

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        """Deserialise a message object; ConversionError (a ValueError) names the type."""
        try:
            if self.ros1:
                return self.typestore.deserialize_ros1(raw, msgtype)
            return self.typestore.deserialize_cdr(raw, msgtype)
        except Exception as err:
            raise ConversionError(f"cannot deserialise {msgtype}: {err}") from None

    def ensure_types(self, msgtypes: Sequence[str]) -> None:
        """Register the definitions the bag lacks (e.g. for decoding workers) from the typestore.

        BagError when the default typestore does not know them either.
        """
        missing = [t for t in msgtypes if t not in self.typestore.fielddefs]
        if not missing:
            return
        unknown = sorted(t for t in missing if t not in self.default_store.fielddefs)
        if unknown:
            raise BagError(
                f"bag {self.path} has no definition of {unknown} and the typestore does not "
                f"know it: add it to custom_types in the config (.msg text)"
            )
        needed = type_closure(self.default_store.fielddefs, missing)
        self.typestore.register(
            {k: v for k, v in needed.items() if k not in self.typestore.fielddefs}
        )

    def has_header(self, msgtype: str) -> bool:
        """Whether `msgtype`'s first field is a std_msgs/Header (its stamp can be peeked)."""
        fields = self.typestore.fielddefs.get(msgtype, ((), ()))[1]
        return bool(fields) and fields[0][0] == "header" and fields[0][1][1] == HEADER_TYPE

    def require_convertible(self) -> None:
        """BagError for what `sdm bag2zarr` cannot convert: ROS 1 bags and empty bags."""
        if self.ros1:
            raise BagError(
                f"{self.path} is a ROS 1 bag; bag2zarr reads rosbag2: convert it first with "
                f"`rosbags-convert --src {self.path} --dst {self.path.with_suffix('')}_ros2` "
                f"(installed with rosbags) and give the new directory"
            )
        if self.declared_total == 0:
            topics = ", ".join(sorted(self.topics)) or "none"
            raise BagError(
                f"bag {self.path} holds no messages (topics declared: {topics}); nothing to "
                f"convert: leave it out"
            )

    def shortfalls(self, topics: Iterable[str]) -> dict[str, tuple[int, int]]:
        """{topic: (read, declared)} for `topics` that yielded fewer messages than declared."""
        out = {}
        for name in topics:
            declared = self.topics[name].declared or 0
            if self.read_counts[name] < declared:
                out[name] = (self.read_counts[name], declared)
        return out


# ------------------------------------------------------------------------------------------------
# `sdm bag info`


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    stamp = datetime.datetime.fromtimestamp(ns // 1_000_000_000, tz=datetime.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


def bag_info(path: str | Path, typestore: str = "auto") -> dict[str, Any]:
    """Gather everything `sdm bag info` reports about one bag (JSON-ready).

    Layout, storage, files, distro, compression, start / end / duration of the messages read,
    and per topic its type, QoS, declared and read counts and whether its first message
    decodes. Reads every message once (raw, not decoded). Raises BagError when the bag cannot
    be opened.
    """
    with BagReader(path, typestore=typestore) as bag:
        first: dict[str, tuple[str, bytes]] = {}
        start = end = None
        for topic, msgtype, t_ns, raw in bag.messages():
            if topic not in first:
                first[topic] = (msgtype, raw)
            start = t_ns if start is None else min(start, t_ns)
            end = t_ns if end is None else max(end, t_ns)
        warnings = list(bag.notes)
        topics = []
        for name in sorted(bag.topics):
            topic = bag.topics[name]
            decodes: bool | None = None
            problem = topic.problem
            if name in first and problem is None:
                try:
                    bag.deserialize(first[name][1], first[name][0])
                    decodes = True
                except ValueError as err:
                    decodes, problem = False, f"its first message does not decode ({err})"
            elif problem is not None:
                decodes = False
            read = bag.read_counts[name]
            if topic.declared is not None and read != topic.declared:
                warnings.append(f"{name}: {read} messages read, {topic.declared} declared")
            if problem:
                warnings.append(f"{name}: cannot be decoded: {problem}")
            topics.append(
                {
                    "name": name,
                    "type": topic.msgtype,
                    "recorded_type": topic.recorded_type,
                    "serialization": topic.serialization,
                    "qos": [qos_to_dict(q) for q in topic.qos],
                    "qos_summary": qos_summary(topic.qos),
                    "messages_declared": topic.declared,
                    "messages_read": read,
                    "decodes": decodes,
                    "problem": problem,
                }
            )
        read_total = sum(bag.read_counts.values())
        if read_total == 0:
            warnings.append("no message could be read: the bag is empty")
        if topics and any(t["type"] != t["recorded_type"] for t in topics):
            warnings.append("legacy type names (pkg/Name) were read as pkg/msg/Name")
        if bag.ros1:
            warnings.append("ROS 1 bag: `sdm bag2zarr` needs it converted (rosbags-convert)")
        return {
            "path": str(bag.path),
            "layout": bag.layout,
            "storage": bag.storage,
            "files": bag.files,
            "version": bag.metadata.get("version"),
            "distro": bag.distro,
            "compression": bag.compression,
            "start_ns": start,
            "end_ns": end,
            "start": _iso(start),
            "end": _iso(end),
            "duration_s": None if start is None else (end - start) / 1e9,
            "messages_declared": bag.declared_total,
            "messages_read": read_total,
            "topics": topics,
            "warnings": warnings,
        }


def format_bag_info(info: Mapping[str, Any]) -> str:
    """Format a `ros2 bag info`-like text of one `bag_info` result."""
    version = f", metadata version {info['version']}" if info.get("version") is not None else ""
    files = info["files"]
    lines = [
        f"bag:         {info['path']} ({info['layout']}{version})",
        f"storage:     {info['storage']}, {len(files)} file{'s' if len(files) != 1 else ''} "
        f"({', '.join(files)}), compression {info['compression']}",
        f"distro:      {info['distro'] or 'unknown'}",
    ]
    if info["start_ns"] is None:
        lines.append("duration:    - (no message read)")
    else:
        lines += [
            f"duration:    {info['duration_s']:.9g} s",
            f"start:       {info['start']} ({info['start_ns']} ns)",
            f"end:         {info['end']} ({info['end_ns']} ns)",
        ]
    lines.append(
        f"messages:    {info['messages_read']} read, {info['messages_declared']} declared"
    )
    if info["topics"]:
        width = max(len(t["name"]) for t in info["topics"])
        type_width = max(len(t["type"]) for t in info["topics"])
        lines.append(f"topics:      {len(info['topics'])} (read / declared, QoS)")
        for t in info["topics"]:
            declared = "-" if t["messages_declared"] is None else t["messages_declared"]
            mark = "" if t["decodes"] is not False else "  [cannot decode]"
            lines.append(
                f"  {t['name']:<{width}}  {t['type']:<{type_width}}  "
                f"{t['messages_read']:>7} / {declared:<7}  {t['qos_summary']}{mark}"
            )
    else:
        lines.append("topics:      none")
    for warning in info["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


__all__ = [
    "BagError",
    "BagReader",
    "BagTopic",
    "bag_info",
    "format_bag_info",
    "make_typestore",
    "normalize_msgtype",
    "read_metadata",
    "type_closure",
]
