"""Pages -> overlapping chunks measured in embedding-model tokens, with exact locations."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.context import ContextHeaders
from ingest.models import Chunk, Heading, ParsedDocument

# Pages are joined with a paragraph break so a page end is a natural split point and a
# chunk may still run on across it.
PAGE_SEPARATOR = "\n\n"

# Regular expressions, best split point first. A sentence end (whitespace after . ! ?)
# ranks above a line break because PDF lines break mid-sentence.
_SENTENCE_END = r"(?<=[.!?])\s+"
TEXT_SEPARATORS = [r"\n{2,}", _SENTENCE_END, r"\n", r" ", ""]
# Tried before TEXT_SEPARATORS in Markdown.
MARKDOWN_SEPARATORS = [
    r"\n#{1,6} ",  # headings
    r"```\n",  # fenced code
    r"\n\*\*\*+\n",  # thematic breaks
    r"\n---+\n",
    r"\n___+\n",
]
SECTION_SEPARATOR = " > "
# Longer pieces are counted in blocks: one tokenizer call never sees a whole huge page.
LONG_PIECE_CHARS = 4000


class TokenChunker:
    """Split documents into chunks of at most ``chunk_size`` tokens of ``count_tokens``.

    ``chunk_size`` must not exceed what the embedder takes without truncation. Markdown
    is first cut at its headings, so a chunk never mixes two sections.
    ``separators`` (regular expressions, best split point first) replace
    TEXT_SEPARATORS for plain text and PDFs. With ``context_headers`` every chunk gets
    a header (ingest/context.py) of at most HEADER_MAX_TOKENS tokens, which the
    embedder reads too: leave room for it in ``chunk_size``.
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        chunk_size: int,
        chunk_overlap: int,
        *,
        separators: Sequence[str] | None = None,
        context_headers: bool = False,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {chunk_overlap} "
                f"with chunk_size {chunk_size}"
            )
        self.count_tokens = count_tokens
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators = list(separators) if separators is not None else TEXT_SEPARATORS
        self.context_headers = context_headers

    @classmethod
    def for_model(
        cls,
        count_tokens: Callable[[str], int],
        max_tokens: int,
        chunk_size: int,
        chunk_overlap: int,
        *,
        context_headers: bool = False,
    ) -> TokenChunker:
        """A chunker whose chunks the model embeds whole: the size clamped to ``max_tokens``.

        A clamped chunk keeps the overlap's share of the configured one, so an overlap that
        was valid for the configured size stays smaller than the chunk.
        """
        size = min(chunk_size, max_tokens)
        overlap = chunk_overlap if size == chunk_size else chunk_overlap * size // chunk_size
        return cls(count_tokens, size, overlap, context_headers=context_headers)

    def split(self, doc: ParsedDocument, document_id: str) -> list[Chunk]:
        text, page_starts = join_pages(doc)
        sections = _SectionLocator(
            doc.headings,
            {page.number: start for page, start in zip(doc.pages, page_starts, strict=True)},
        )
        markdown = doc.media_type == "text/markdown"
        splitter = RecursiveCharacterTextSplitter(
            separators=MARKDOWN_SEPARATORS + self.separators if markdown else self.separators,
            is_separator_regex=True,
            keep_separator="start",
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            length_function=PieceTokenCounter(self.count_tokens),  # one cache per document
            strip_whitespace=True,
        )
        headers = ContextHeaders(doc, self.count_tokens) if self.context_headers else None
        ocr_pages = frozenset(doc.ocr_pages)
        chunks: list[Chunk] = []
        for segment_start, segment_end in sections.segments(text):
            for start, end in self._split_segment(splitter, text, segment_start, segment_end):
                first = bisect_right(page_starts, start) - 1
                last = bisect_right(page_starts, end - 1) - 1
                section = sections.at(start)
                page = doc.pages[first].number
                chunks.append(
                    Chunk(
                        document_id=document_id,
                        filename=doc.filename,
                        text=text[start:end],
                        page=page,
                        page_end=doc.pages[last].number,
                        char_start=start - page_starts[first],
                        char_end=end - page_starts[last],
                        section=section,
                        context=headers.for_chunk(page, section) if headers else "",
                        page_unit=doc.page_unit,
                        ocr=any(page.number in ocr_pages for page in doc.pages[first : last + 1]),
                    )
                )
        return chunks

    def _split_segment(
        self, splitter: RecursiveCharacterTextSplitter, text: str, start: int, end: int
    ) -> list[tuple[int, int]]:
        """(start, end) offsets in ``text`` of the chunks of ``text[start:end]``, in order."""
        segment = text[start:end]
        spans: list[tuple[int, int]] = []
        previous_start, previous_end = -1, 0
        for piece in splitter.split_text(segment):
            # Each chunk is a stripped, contiguous slice of the segment and chunks come in
            # order: the next one starts after the previous start and ends after its end
            # (without overlap, starts at or after it). The bounds matter when a line
            # repeats (a table's row of dots and amounts): the first match after the
            # previous start can lie inside the previous chunk.
            earliest = (
                previous_end
                if self.chunk_overlap == 0
                else max(previous_start + 1, previous_end - len(piece) + 1)
            )
            offset = segment.find(piece, earliest)
            if offset < 0:  # a chunk inside the previous one breaks that rule; place it anyway
                offset = segment.find(piece, previous_start + 1)
            if offset < 0:  # cannot happen with keep_separator; fail loudly if it ever does
                raise RuntimeError("text splitter returned a chunk that is not in the text")
            previous_start, previous_end = offset, offset + len(piece)
            piece_start, piece_end = start + offset, start + offset + len(piece)
            if self.count_tokens(piece) <= self.chunk_size:
                spans.append((piece_start, piece_end))
            else:
                spans.extend(self._hard_split(text, piece_start, piece_end))
        return spans

    def _hard_split(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Cut an over-long span into the longest prefixes that fit, counted exactly.

        Only reached when the tokenizer's counts do not add up across the splitter's
        pieces (the estimate undercounted), so it favours certainty over elegance.
        """
        spans: list[tuple[int, int]] = []
        while start < end:
            while start < end and text[start].isspace():
                start += 1
            if start == end:
                break
            low, high = start + 1, end  # the longest fitting cut lies in [low, high]
            while low < high:
                middle = (low + high + 1) // 2
                if self.count_tokens(text[start:middle]) <= self.chunk_size:
                    low = middle
                else:
                    high = middle - 1
            cut = low
            if cut < end:
                space = text.rfind(" ", start, cut)
                if space > start + (cut - start) // 2:
                    cut = space  # end at a word boundary when one is near
            stop = cut
            while stop > start and text[stop - 1].isspace():
                stop -= 1
            spans.append((start, stop))
            start = cut
        return spans


class TokenizerCounter:
    """Counts tokens with a Rust ``tokenizers`` tokenizer, never padded or truncated.

    Picklable (it travels as the tokenizer's JSON), so chunking can run in a parser worker
    under the parse time limit instead of in the API process.
    """

    def __init__(self, tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        self._json = tokenizer_json
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def __call__(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def __reduce__(self) -> tuple[type[TokenizerCounter], tuple[str]]:
        return (TokenizerCounter, (self._json,))


class PieceTokenCounter:
    """The splitter's length function: each distinct piece is counted once per document.

    The splitter measures every piece at every level of its recursion and again while
    merging, so without the cache the tokenizer would run on the same strings over and
    over. Pieces longer than LONG_PIECE_CHARS are counted in blocks cut at whitespace
    (WordPiece counts add up across whitespace), which keeps a single tokenizer call
    small; any miscount is caught by the exact check of every finished chunk.
    """

    def __init__(self, count_tokens: Callable[[str], int]) -> None:
        self._count_tokens = count_tokens
        self._counts: dict[str, int] = {}  # lives for one document only

    def __call__(self, text: str) -> int:
        count = self._counts.get(text)
        if count is None:
            if len(text) <= LONG_PIECE_CHARS:
                count = self._count_tokens(text)
            else:
                count = sum(self._count_tokens(block) for block in _blocks(text))
            self._counts[text] = count
        return count


def _blocks(text: str) -> list[str]:
    """``text`` cut into consecutive blocks of at most LONG_PIECE_CHARS, at whitespace."""
    blocks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + LONG_PIECE_CHARS, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut if cut > start else end
        blocks.append(text[start:end])
        start = end
    return blocks


def join_pages(doc: ParsedDocument) -> tuple[str, list[int]]:
    """The whole text with PAGE_SEPARATOR between pages, and where each page starts in it."""
    starts: list[int] = []
    position = 0
    for page in doc.pages:
        starts.append(position)
        position += len(page.text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(page.text for page in doc.pages), starts


class _SectionLocator:
    """The Markdown heading path ("Intro > Background") in effect at an offset."""

    def __init__(self, headings: Sequence[Heading], page_starts: dict[int, int]) -> None:
        self._offsets: list[int] = []
        self._paths: list[str] = []
        stack: list[Heading] = []
        for heading in sorted(headings, key=lambda h: (h.page, h.offset)):
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
            self._offsets.append(page_starts[heading.page] + heading.offset)
            self._paths.append(SECTION_SEPARATOR.join(h.title for h in stack))
        self._offsets_set = set(self._offsets)

    def segments(self, text: str) -> list[tuple[int, int]]:
        """Cut ``text`` at every heading, except after a heading with no text of its own
        (a '# Part' directly followed by '## Chapter' stays with its first subsection)."""
        cuts = [0]
        for offset in self._offsets:
            if offset <= cuts[-1]:
                continue
            body = text[cuts[-1] : offset]
            if cuts[-1] in self._offsets_set:
                body = body.partition("\n")[2]  # the text under the heading, not the heading
            if body.strip():
                cuts.append(offset)
        return list(zip(cuts, [*cuts[1:], len(text)], strict=True))

    def at(self, offset: int) -> str | None:
        index = bisect_right(self._offsets, offset) - 1
        return self._paths[index] if index >= 0 else None
