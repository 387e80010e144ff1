#!/usr/bin/env python3
"""Extracts, from pinned checkouts of Megatron-LM, torchtitan and DeepSpeed, the names Explorer's exports must use.

Reads the sources as text (Python's ast, no imports: none of the three needs to be installed) and writes the JSON
fixture that tests/Explorer.Core.Tests checks every export against:

    python3 extract.py --megatron M --torchtitan T --deepspeed D > ../../tests/Explorer.Core.Tests/Data/export-fixtures.json

M, T and D are git directories (bare mirrors work); each is read at HEAD and its commit recorded.
"""
import argparse, ast, json, subprocess, sys


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def show(repo, path):
    return git(repo, "show", f"HEAD:{path}")


def pinned(repo):
    commit, date = git(repo, "log", "-1", "--format=%H %cI").split()
    return {"commit": commit, "date": date}


def literal(node):
    try:
        return ast.literal_eval(node)
    except Exception:
        return None


# --- Megatron-LM: every flag megatron/training/arguments.py defines -------------------------------------------------

def dataclasses_in(repo, prefix):
    """name -> (bases, [(field, annotation source, default node, field() keywords)]) for every class under prefix."""
    classes = {}
    for path in git(repo, "ls-tree", "-r", "--name-only", "HEAD", prefix).split():
        if not path.endswith(".py"):
            continue
        try:
            tree = ast.parse(show(repo, path))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = []
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        keywords = {}
                        default = item.value
                        if isinstance(default, ast.Call) and getattr(default.func, "id", getattr(default.func, "attr", "")) == "field":
                            keywords = {k.arg: k.value for k in default.keywords}
                            default = keywords.get("default")
                        fields.append((item.target.id, ast.unparse(item.annotation), default, keywords))
                bases = [ast.unparse(b).split(".")[-1] for b in node.bases]
                classes.setdefault(node.name, (bases, fields))
    return classes


def all_fields(classes, name, seen=None):
    seen = seen or set()
    if name in seen or name not in classes:
        return []
    seen.add(name)
    bases, fields = classes[name]
    inherited = [f for b in bases for f in all_fields(classes, b, seen)]
    own = {f[0] for f in fields}
    return [f for f in inherited if f[0] not in own] + fields


def factory_flags(classes, class_name, exclude):
    """The names ArgumentGroupFactory gives a dataclass's fields (megatron/training/argument_utils.py)."""
    flags = []
    for name, annotation, default, keywords in all_fields(classes, class_name):
        if name in exclude or name.startswith("_"):
            continue
        meta = literal(keywords["metadata"]) if "metadata" in keywords else None
        names = None
        if isinstance(meta, dict) and isinstance(meta.get("argparse_meta"), dict):
            names = meta["argparse_meta"].get("arg_names")
        if names:
            flags.extend(names)
        elif annotation == "bool" and literal(default) is True:
            flags.extend(["--no-" + name.replace("_", "-"), "--disable-" + name.replace("_", "-")])
        else:
            flags.append("--" + name.replace("_", "-"))
    return flags


def megatron(repo):
    source = show(repo, "megatron/training/arguments.py")
    tree = ast.parse(source)
    classes = dataclasses_in(repo, "megatron")
    flags, choices = set(), {}
    excludes = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "exclude":
            excludes[node.lineno] = literal(node.value) or []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if callee == "add_argument":
            names = [literal(a) for a in node.args if isinstance(literal(a), str) and literal(a).startswith("--")]
            flags.update(names)
            for k in node.keywords:
                if k.arg == "choices" and isinstance(literal(k.value), (list, tuple)):
                    for n in names:
                        choices[n] = [str(c) for c in literal(k.value)]
        elif callee == "ArgumentGroupFactory" and node.args:
            class_name = ast.unparse(node.args[0]).split(".")[-1]
            exclude = []
            for k in node.keywords:
                if k.arg == "exclude":
                    exclude = literal(k.value)
                    if exclude is None and isinstance(k.value, ast.Name):  # exclude=exclude: the list assigned above it
                        exclude = excludes[max(line for line in excludes if line < node.lineno)]
            flags.update(factory_flags(classes, class_name, set(exclude or [])))
    # Choices that come from Literal[...] annotations of generated flags.
    for name, annotation, default, keywords in all_fields(classes, "TransformerConfig"):
        if annotation.startswith("Optional[Literal[") or annotation.startswith("Literal["):
            values = [v.strip().strip("'\"") for v in annotation.split("Literal[", 1)[1].rstrip("]").split(",")]
            choices.setdefault("--" + name.replace("_", "-"), values)
    return {**pinned(repo), "source": "megatron/training/arguments.py (+ the dataclasses its ArgumentGroupFactory calls expand)",
            "flags": sorted(flags), "choices": {k: choices[k] for k in sorted(choices)}}


# --- torchtitan: the CLI options it freezes in its own test, and ParallelismConfig's fields ---------------------------

def torchtitan(repo):
    test = ast.parse(show(repo, "tests/unit_tests/test_no_new_cli_options.py"))
    options = []
    for node in ast.walk(test):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_FROZEN_CLI_OPTIONS" for t in node.targets):
            options = sorted(literal(node.value.args[0]))
    configs = ast.parse(show(repo, "torchtitan/config/configs.py"))
    fields, choices = {}, {}
    for node in ast.walk(configs):
        if isinstance(node, ast.ClassDef) and node.name in ("ParallelismConfig", "TrainingConfig"):
            fields[node.name] = [i.target.id for i in node.body if isinstance(i, ast.AnnAssign)]
            for i in node.body:
                if isinstance(i, ast.AnnAssign) and ast.unparse(i.annotation).startswith("Literal["):
                    inner = i.annotation.slice
                    choices[i.target.id] = [literal(e) for e in inner.elts] if isinstance(inner, ast.Tuple) else [literal(inner)]
    checkpointing = show(repo, "torchtitan/distributed/activation_checkpoint.py")
    policies = [c for c in ("SelectiveAC", "FullAC") if f"class {c}(" in checkpointing]
    pipeline = show(repo, "torchtitan/distributed/pipeline_parallel.py")
    modules = [m for m in ["tok_embeddings", "layers.", "norm", "lm_head", "output"] if f'"{m}' in pipeline]
    return {**pinned(repo), "source": "tests/unit_tests/test_no_new_cli_options.py, torchtitan/config/configs.py",
            "cliOptions": options, "parallelismFields": fields.get("ParallelismConfig", []), "trainingFields": fields.get("TrainingConfig", []),
            "choices": choices, "activationCheckpointing": policies, "moduleNames": modules}


# --- DeepSpeed: PipelineModule's arguments, partition methods, the config keys and ZeRO fields ------------------------

def deepspeed(repo):
    module = ast.parse(show(repo, "deepspeed/runtime/pipe/module.py"))
    arguments = []
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef) and node.name == "PipelineModule":
            init = next(i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__")
            arguments = [a.arg for a in init.args.args[1:]] + [a.arg for a in init.args.kwonlyargs]
    methods = sorted({m for m in ("uniform", "parameters", "type:") if f"'{m}" in show(repo, "deepspeed/runtime/pipe/module.py") or f'"{m}' in show(repo, "deepspeed/runtime/pipe/module.py")})
    constants = ast.parse(show(repo, "deepspeed/runtime/constants.py"))
    keys = sorted({literal(n.value) for n in ast.walk(constants) if isinstance(n, ast.Assign) and isinstance(literal(n.value), str)})
    zero_source = show(repo, "deepspeed/runtime/zero/config.py")
    zero = ast.parse(zero_source)
    keys = keys + [literal(n.value) for n in ast.walk(zero) if isinstance(n, ast.Assign) and isinstance(literal(n.value), str)]
    zero_fields = []
    for node in ast.walk(zero):
        if isinstance(node, ast.ClassDef) and node.name == "DeepSpeedZeroConfig":
            zero_fields = [i.target.id for i in node.body if isinstance(i, ast.AnnAssign)]
    return {**pinned(repo), "source": "deepspeed/runtime/pipe/module.py, runtime/constants.py, runtime/zero/config.py",
            "pipelineModuleArguments": arguments, "partitionMethods": methods, "configKeys": sorted({k for k in keys if k and "\n" not in k}), "zeroFields": zero_fields}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--megatron", required=True)
    parser.add_argument("--torchtitan", required=True)
    parser.add_argument("--deepspeed", required=True)
    a = parser.parse_args()
    json.dump({"megatron": megatron(a.megatron), "torchtitan": torchtitan(a.torchtitan), "deepspeed": deepspeed(a.deepspeed)},
              sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
