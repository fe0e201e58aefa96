"""Prompt-injection flags: known phrasings of "ignore your instructions", jailbreak personas,
requests for the system prompt, and chat-template role tags smuggled into user content, in
English and Chinese. Patterns, not a classifier: they catch the common attacks verbatim and
stay quiet on ordinary sentences ("please ignore the typo above")."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

InjectionPolicy = Literal["off", "flag", "block"]


@dataclass(frozen=True)
class InjectionFlag:
    rule: str
    start: int
    end: int


_EARLIER = r"(?:previous|prior|above|earlier|preceding|foregoing|former|initial|original)"
_ORDERS = (
    r"(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|orders"
    r"|constraints|programming|guardrails)"
)
_IGNORE = r"(?:ignore|disregard|forget|skip|override|overrule|bypass|drop|abandon|set\s+aside)"
_ZH_IGNORE = r"(?:忽略|无视|忽视|不要理会|不要管|别管|不用管|忘记|忘掉|抛开|跳过|放弃)"
_ZH_EARLIER = r"(?:之前|以前|先前|此前|上面|上述|以上|前面|前述|原来|原有|原先|原始)"
_ZH_ORDERS = r"(?:指令|指示|提示词|提示|规则|命令|要求|设定|约束|限制|规定)"
_ZH_ALL = r"(?:所有|全部|一切|任何)"
_ZH_REVEAL = r"(?:输出|打印|显示|展示|告诉我|透露|泄露|泄漏|重复|复述|给我看|说出|公开|列出)"
_ZH_PROMPT = r"(?:系统|初始|原始|隐藏|内部)"

RULES: Mapping[str, str] = MappingProxyType(
    {
        # "ignore all previous instructions", "disregard the above rules"
        "ignore_instructions": (
            rf"\b{_IGNORE}\s+(?:(?:all|any|every|the|your|of|these|those|its)\s+)*"
            rf"(?:{_EARLIER}\s+)+(?:\w+\s+)?{_ORDERS}\b"
            rf"|\b{_IGNORE}\s+(?:all\s+|any\s+)?(?:everything|anything|all)\s+"
            r"(?:(?:that\s+)?(?:you\s+(?:were|have\s+been)\s+told|(?:was\s+)?(?:said|written|stated))"
            r"\s+)?(?:above|before|previously|so\s+far|until\s+now)\b"
        ),
        # "disregard the system prompt", "override your developer message"
        "system_prompt_override": (
            rf"\b{_IGNORE}\s+(?:(?:the|your|its|any|all|this)\s+)?(?:system|developer)\s+"
            r"(?:prompt|message|instructions?|rules)\b"
        ),
        # "you are now DAN", "enable developer mode", "do anything now"
        "jailbreak_persona": (
            r"\byou\s+are\s+(?:now\s+|going\s+to\s+(?:act|be)\s+(?:as\s+)?)(?-i:DAN)\b"
            r"|\b(?:act|pretend|role-?play)\s+as\s+(?-i:DAN)\b"
            r"|\b(?:enable|enter|activate|switch\s+to|turn\s+on|you\s+are\s+(?:now\s+)?in)\s+"
            r"(?:the\s+)?(?:developer|god|jailbreak|jailbroken|unrestricted|(?-i:DAN))\s+mode\b"
            r"|\bdeveloper\s+mode\s+(?:enabled|activated|on)\b"
            r"|\bdo\s+anything\s+now\b"
            r"|\byou\s+are\s+(?:now\s+)?(?:jailbroken|unfiltered|freed\s+from\s+(?:all\s+)?"
            r"(?:your\s+)?(?:rules|restrictions|guidelines))\b"
        ),
        # "reveal your system prompt", "print the hidden instructions"
        "reveal_system_prompt": (
            r"\b(?:reveal|print|show|display|output|repeat|recite|leak|dump|expose|disclose"
            r"|tell\s+me|give\s+me|write\s+out|spell\s+out)\s+(?:me\s+)?(?:your|the|its)\s+"
            r"(?:(?:full|entire|exact|complete|original|hidden|initial|secret|verbatim)\s+)*"
            r"(?:system\s+(?:prompt|message|instructions?)|(?:hidden|initial|original|secret)\s+"
            r"(?:prompt|instructions))\b"
            r"|\bwhat\s+(?:is|was|are|were)\s+your\s+(?:(?:exact|full|original|initial)\s+)*"
            r"(?:system\s+prompt|system\s+instructions|initial\s+instructions)\b"
            r"|\brepeat\s+(?:the\s+|all\s+)?(?:words|text|everything)\s+(?:above|before\s+this)\b"
        ),
        # chat-template tokens and headers that would start a new system or assistant turn
        "role_tag": (
            r"<\|im_start\|>\s*(?:system|assistant|developer)\b"
            r"|<\|(?:im_end|endoftext|eot_id|start_header_id|end_header_id|system|assistant)\|>"
            r"|<</?SYS>>|\[/?(?-i:INST|SYS)\]"
            r"|^[ \t]*#{2,}[ \t]*(?:system|assistant|developer)(?:[ \t]*prompt)?[ \t]*:"
        ),
        # 忽略之前的所有指令 / 忽略以上指示 / 忘掉你的系统设定
        "ignore_instructions_zh": (
            rf"{_ZH_IGNORE}\s*掉?\s*(?:你|您)?的?\s*(?:"
            rf"{_ZH_EARLIER}\s*(?:的|{_ZH_ALL}|\s)*"
            rf"|{_ZH_ALL}\s*的?\s*(?:{_ZH_EARLIER}\s*的?\s*)?)(?:{_ZH_ORDERS})"
            rf"|{_ZH_IGNORE}\s*掉?\s*(?:你|您)?的?\s*系统\s*(?:提示词|指令|设定|规则)"
        ),
        # 输出你的系统提示 / 告诉我你的初始指令
        "reveal_system_prompt_zh": (
            rf"{_ZH_REVEAL}\s*(?:一下)?\s*(?:你|您)的?\s*(?:完整的?|全部的?)?\s*"
            rf"{_ZH_PROMPT}(?:提示词|提示|指令|消息|设定)"
            rf"|{_ZH_REVEAL}\s*(?:一下)?\s*(?:完整的?|全部的?)?\s*{_ZH_PROMPT}(?:提示词|指令|设定)"
        ),
        # 你现在是DAN / 进入开发者模式
        "jailbreak_persona_zh": (
            r"(?:你现在是|现在你是|你将扮演|扮演)\s*(?-i:DAN)"
            r"|(?:进入|开启|启用|切换到|打开|激活)\s*(?:了)?\s*(?:开发者|越狱|无限制|上帝|(?-i:DAN))\s*模式"
        ),
    }
)
_COMPILED: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {name: re.compile(pattern, re.IGNORECASE | re.MULTILINE) for name, pattern in RULES.items()}
)
_IGNORE_WORDS = ("ignor", "disregard", "forget", "skip", "overr", "bypass", "drop", "abandon")
_ZH_IGNORE_WORDS = ("忽", "无视", "不要", "别管", "不用管", "忘", "抛开", "跳过", "放弃")
# Words (lower case) one of which every match of a rule contains: a text without any of
# them skips that rule's scan, which keeps ordinary texts at one substring search per word.
_TRIGGERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ignore_instructions": (*_IGNORE_WORDS, "aside"),
        "system_prompt_override": (*_IGNORE_WORDS, "aside"),
        "jailbreak_persona": ("dan", "mode", "anything", "jailbroken", "unfiltered", "freed"),
        "reveal_system_prompt": ("system", "hidden", "initial", "original", "secret", "repeat"),
        "role_tag": ("<|", "<<", "[", "#"),
        "ignore_instructions_zh": _ZH_IGNORE_WORDS,
        "reveal_system_prompt_zh": ("系统", "初始", "原始", "隐藏", "内部"),
        "jailbreak_persona_zh": ("dan", "模式"),
    }
)


class InjectionScanner:
    """Flags known prompt-injection phrasings. Compiled once; safe to share between threads."""

    def __init__(self, rules: Collection[str] | None = None) -> None:
        names = list(RULES) if rules is None else list(rules)
        unknown = set(names) - set(RULES)
        if unknown:
            raise ValueError(
                f"unknown injection rule(s) {', '.join(sorted(unknown))}; known: {', '.join(RULES)}"
            )
        self._rules = tuple((name, _TRIGGERS[name], _COMPILED[name]) for name in names)

    def scan(self, text: str) -> list[InjectionFlag]:
        """Every match of every rule, sorted by position."""
        lowered = text.lower()
        flags = [
            InjectionFlag(name, match.start(), match.end())
            for name, triggers, pattern in self._rules
            if any(word in lowered for word in triggers)
            for match in pattern.finditer(text)
        ]
        return sorted(flags, key=lambda f: (f.start, f.end, f.rule))
