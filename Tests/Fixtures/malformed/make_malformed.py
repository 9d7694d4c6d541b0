"""Regenerates the malformed model files in this directory and their README.md table.

    python3 Tests/Fixtures/malformed/make_malformed.py

Standard library only. Every file is one small, deliberate defect applied to one of the
tiny valid models in ../valid/ (or a few bytes of garbage), so that a failure to reject
it points at exactly one check in a reader. Tests/CAPI/test_capi.c loads every file in
this directory, from the file and from memory, and compares the status and message
with the table in README.md (which this script writes, so the two cannot drift apart).

Each case is (file name, expected status, a word the message must contain, what is
wrong). "A or B" in the status column accepts either code.
"""

import copy
import json
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent
VALID = HERE.parent / "valid"

CASES = []  # (name, status, substring, description, bytes)


def case(name, status, substring, description, data):
    if isinstance(data, str):
        data = data.encode()
    CASES.append((name, status, substring, description, data))


def dump(obj):
    return json.dumps(obj, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# XGBoost JSON
# --------------------------------------------------------------------------------------

XGB_TEXT = (VALID / "xgb_tiny.json").read_text()
XGB = json.loads(XGB_TEXT)


def xgb(edit):
    """A deep copy of the valid XGBoost model with `edit(model, learner, tree0)` applied."""
    m = copy.deepcopy(XGB)
    learner = m["learner"]
    edit(m, learner, learner["gradient_booster"]["model"]["trees"][0])
    return dump(m)


def set_(d, key, value):
    d[key] = value


def chain_tree(depth):
    """Child arrays of a tree that is a chain of `depth` splits: node 2i splits, its left
    child 2i+1 is a leaf, its right child 2i+2 the next split (or the last leaf)."""
    n = 2 * depth + 1
    left, right = [-1] * n, [-1] * n
    for i in range(depth):
        left[2 * i] = 2 * i + 1
        right[2 * i] = 2 * i + 2
    return left, right, n


def xgb_deep_tree(depth):
    left, right, n = chain_tree(depth)

    def edit(m, learner, t):
        t["left_children"] = left
        t["right_children"] = right
        t["parents"] = [2147483647] + [0] * (n - 1)
        t["split_indices"] = [0] * n
        t["split_conditions"] = [0.5 if left[i] != -1 else 0.1 for i in range(n)]
        t["split_type"] = [0] * n
        t["default_left"] = [0] * n
        t["sum_hessian"] = [1.0] * n
        t["loss_changes"] = [0.0] * n
        t["base_weights"] = [0.0] * n
        t["categories"], t["categories_nodes"] = [], []
        t["categories_segments"], t["categories_sizes"] = [], []
        t["tree_param"]["num_nodes"] = str(n)
    return xgb(edit)


case("xgb_truncated.json", "PARSE", "truncated",
     "the valid XGBoost model cut in half", XGB_TEXT[: len(XGB_TEXT) // 2])
case("xgb_truncated_after_brace.json", "PARSE", "truncated",
     "only the first byte, '{'", "{")
case("xgb_trailing_garbage.json", "PARSE", "after the JSON",
     "a complete model followed by more bytes", XGB_TEXT + "}garbage")
case("xgb_deep_nesting.json", "PARSE", "JSON",
     "arrays nested 10,000 deep (a stack-exhaustion attempt)",
     '{"learner":' + "[" * 10000 + "]" * 10000 + "}")
case("xgb_learner_not_object.json", "PARSE", "learner",
     "'learner' is a number", '{"learner": 5}')
case("xgb_missing_learner_model_param.json", "PARSE", "learner_model_param",
     "'learner.learner_model_param' removed",
     xgb(lambda m, l, t: l.pop("learner_model_param")))
case("xgb_missing_objective.json", "PARSE", "objective",
     "'learner.objective' removed", xgb(lambda m, l, t: l.pop("objective")))
case("xgb_missing_split_conditions.json", "PARSE", "split_conditions",
     "tree 0 has no 'split_conditions'", xgb(lambda m, l, t: t.pop("split_conditions")))
case("xgb_left_children_not_array.json", "PARSE", "left_children",
     "tree 0 'left_children' is a string",
     xgb(lambda m, l, t: set_(t, "left_children", "1 3 5 -1 -1 -1 -1")))
case("xgb_split_condition_not_number.json", "PARSE", "split_conditions",
     "tree 0 'split_conditions[1]' is the string \"abc\"",
     xgb(lambda m, l, t: t["split_conditions"].__setitem__(1, "abc")))
case("xgb_split_condition_object.json", "PARSE", "split_conditions",
     "tree 0 'split_conditions[2]' is an object",
     xgb(lambda m, l, t: t["split_conditions"].__setitem__(2, {"x": 1})))
case("xgb_default_left_not_bool.json", "PARSE", "default_left",
     "tree 0 'default_left[0]' is 7", xgb(lambda m, l, t: t["default_left"].__setitem__(0, 7)))
case("xgb_array_length_mismatch.json", "PARSE", "default_left",
     "tree 0 'default_left' has one entry fewer than 'left_children'",
     xgb(lambda m, l, t: t["default_left"].pop()))
case("xgb_child_out_of_range.json", "PARSE", "99",
     "node 1 of tree 0 has left child 99 (the tree has 7 nodes)",
     xgb(lambda m, l, t: t["left_children"].__setitem__(1, 99)))
case("xgb_child_index_huge.json", "PARSE", "left_children",
     "node 1 of tree 0 has left child 10^12",
     xgb(lambda m, l, t: t["left_children"].__setitem__(1, 1000000000000)))
case("xgb_negative_child.json", "PARSE", "left_children",
     "node 1 of tree 0 has left child -7",
     xgb(lambda m, l, t: t["left_children"].__setitem__(1, -7)))
case("xgb_child_cycle.json", "PARSE", "twice",
     "node 1 of tree 0 has the root as its left child (a cycle)",
     xgb(lambda m, l, t: t["left_children"].__setitem__(1, 0)))
case("xgb_self_loop.json", "PARSE", "twice",
     "the root of tree 0 is its own left child",
     xgb(lambda m, l, t: t["left_children"].__setitem__(0, 0)))
case("xgb_shared_subtree.json", "PARSE", "twice",
     "node 1 of tree 0 has node 3 as both children",
     xgb(lambda m, l, t: t["right_children"].__setitem__(1, 3)))
case("xgb_only_left_child.json", "PARSE", "child",
     "node 1 of tree 0 has a left child but right child -1",
     xgb(lambda m, l, t: t["right_children"].__setitem__(1, -1)))
case("xgb_feature_out_of_range.json", "PARSE", "feature 3",
     "node 1 of tree 0 splits on feature 3 of a 3-feature model",
     xgb(lambda m, l, t: t["split_indices"].__setitem__(1, 3)))
case("xgb_feature_index_huge.json", "PARSE", "split_indices",
     "node 1 of tree 0 splits on feature 2^40",
     xgb(lambda m, l, t: t["split_indices"].__setitem__(1, 2 ** 40)))
case("xgb_feature_negative.json", "PARSE", "split_indices",
     "node 1 of tree 0 splits on feature -1",
     xgb(lambda m, l, t: t["split_indices"].__setitem__(1, -1)))
case("xgb_num_nodes_huge.json", "PARSE", "num_nodes",
     "tree 0 declares num_nodes = 10^12",
     xgb(lambda m, l, t: set_(t["tree_param"], "num_nodes", "1000000000000")))
case("xgb_num_nodes_mismatch.json", "PARSE", "num_nodes",
     "tree 0 declares 9 nodes and has 7",
     xgb(lambda m, l, t: set_(t["tree_param"], "num_nodes", "9")))
case("xgb_num_nodes_negative.json", "PARSE", "num_nodes",
     "tree 0 declares num_nodes = -7",
     xgb(lambda m, l, t: set_(t["tree_param"], "num_nodes", "-7")))
case("xgb_num_feature_huge.json", "PARSE", "num_feature",
     "num_feature = 1e12",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "num_feature", "1E12")))
case("xgb_num_feature_negative.json", "PARSE", "num_feature",
     "num_feature = -3",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "num_feature", "-3")))
case("xgb_num_feature_zero.json", "PARSE", "num_feature",
     "num_feature = 0",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "num_feature", "0")))
case("xgb_num_feature_fraction.json", "PARSE", "num_feature",
     "num_feature = 2.5",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "num_feature", "2.5")))
case("xgb_num_class_huge.json", "PARSE", "num_class",
     "num_class = 10^12",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "num_class", "1000000000000")))
case("xgb_num_parallel_tree_zero.json", "PARSE", "num_parallel_tree",
     "num_parallel_tree = 0 and no iteration_indptr",
     xgb(lambda m, l, t: (set_(l["gradient_booster"]["model"]["gbtree_model_param"],
                               "num_parallel_tree", "0"),
                          l["gradient_booster"]["model"].pop("iteration_indptr"))))
case("xgb_tree_info_out_of_range.json", "PARSE", "tree_info",
     "tree_info says tree 1 belongs to class 3 of a binary model",
     xgb(lambda m, l, t: set_(l["gradient_booster"]["model"], "tree_info", [0, 3])))
case("xgb_tree_info_short.json", "PARSE", "tree_info",
     "tree_info has 1 entry for 2 trees",
     xgb(lambda m, l, t: set_(l["gradient_booster"]["model"], "tree_info", [0])))
case("xgb_no_trees.json", "PARSE", "trees",
     "an empty tree list",
     xgb(lambda m, l, t: l["gradient_booster"]["model"].update(
         trees=[], tree_info=[], iteration_indptr=[0])))
case("xgb_trees_not_array.json", "PARSE", "trees",
     "'trees' is an object",
     xgb(lambda m, l, t: set_(l["gradient_booster"]["model"], "trees", {"0": 1})))
case("xgb_tree_not_object.json", "PARSE", "tree 1",
     "the second tree is the number 5",
     xgb(lambda m, l, t: l["gradient_booster"]["model"]["trees"].__setitem__(1, 5)))
case("xgb_iteration_indptr_out_of_range.json", "PARSE", "iteration_indptr",
     "iteration_indptr [0, 1, 5] for 2 trees",
     xgb(lambda m, l, t: set_(l["gradient_booster"]["model"], "iteration_indptr", [0, 1, 5])))
case("xgb_iteration_indptr_uneven.json", "UNSUPPORTED", "iteration_indptr",
     "iterations of 2 and 0 trees",
     xgb(lambda m, l, t: set_(l["gradient_booster"]["model"], "iteration_indptr", [0, 2, 2])))
case("xgb_best_iteration_out_of_range.json", "PARSE", "best_iteration",
     "best_iteration 7 in a 2-iteration model",
     xgb(lambda m, l, t: set_(l, "attributes", {"best_iteration": "7"})))
case("xgb_base_score_nan.json", "PARSE", "base_score",
     "base_score \"[nan]\"",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "base_score", "[nan]")))
case("xgb_base_score_garbage.json", "PARSE", "base_score",
     "base_score \"abc\"",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "base_score", "abc")))
case("xgb_base_score_count.json", "PARSE", "base_score",
     "3 base scores for a 1-output model",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "base_score", "[0.5,0.5,0.5]")))
case("xgb_base_score_out_of_range.json", "PARSE", "base_score",
     "base_score 2 for binary:logistic (XGBoost refuses it: must be in (0, 1) for the logistic loss)",
     xgb(lambda m, l, t: set_(l["learner_model_param"], "base_score", "[2E0]")))
case("xgb_feature_names_count.json", "PARSE", "feature names",
     "2 feature names for 3 features", xgb(lambda m, l, t: set_(l, "feature_names", ["age", "dist"])))
case("xgb_feature_names_not_strings.json", "PARSE", "feature_names",
     "feature names are numbers", xgb(lambda m, l, t: set_(l, "feature_names", [1, 2, 3])))
case("xgb_gblinear.json", "UNSUPPORTED", "gblinear",
     "booster renamed gblinear",
     xgb(lambda m, l, t: set_(l["gradient_booster"], "name", "gblinear")))
case("xgb_unknown_booster.json", "UNSUPPORTED", "frobnicator",
     "booster renamed frobnicator",
     xgb(lambda m, l, t: set_(l["gradient_booster"], "name", "frobnicator")))
case("xgb_unknown_objective.json", "UNSUPPORTED", "binary:frobnicate",
     "objective binary:frobnicate",
     xgb(lambda m, l, t: set_(l["objective"], "name", "binary:frobnicate")))


def dart_short_weights(m, l, t):
    gb = l["gradient_booster"]
    l["gradient_booster"] = {"name": "dart", "gbtree": gb, "weight_drop": [1.0]}


case("xgb_dart_weight_drop_short.json", "PARSE", "weight_drop",
     "a DART booster with 1 weight for 2 trees", xgb(dart_short_weights))
case("xgb_vector_leaf.json", "UNSUPPORTED", "vector-leaf",
     "tree 0 declares size_leaf_vector 2",
     xgb(lambda m, l, t: set_(t["tree_param"], "size_leaf_vector", "2")))
case("xgb_category_segment_overflow.json", "PARSE", "categories_sizes",
     "tree 0's category segment holds 10 categories of 3",
     xgb(lambda m, l, t: set_(t, "categories_sizes", [10])))
case("xgb_category_node_out_of_range.json", "PARSE", "categories_nodes",
     "tree 0's categories_nodes names node 9 of 7",
     xgb(lambda m, l, t: set_(t, "categories_nodes", [9])))
case("xgb_categorical_without_set.json", "PARSE", "categorical",
     "node 0 of tree 0 is categorical but has no category set",
     xgb(lambda m, l, t: t.update(categories=[], categories_nodes=[],
                                  categories_segments=[], categories_sizes=[])))
case("xgb_category_negative.json", "PARSE", "categories",
     "tree 0 lists category -1",
     xgb(lambda m, l, t: set_(t, "categories", [-1, 2, 4])))
case("xgb_category_lengths_differ.json", "PARSE", "categories_",
     "categories_segments has 2 entries, categories_nodes 1",
     xgb(lambda m, l, t: set_(t, "categories_segments", [0, 0])))
# 5,000 entries all pointing at one category id near the 2^24 limit: a 40 kB file that
# would make a reader which builds one bitset per entry allocate 5,000 x 2 MB.
N_SETS = 5000
case("xgb_category_sets_huge.json", "OUT_OF_MEMORY or PARSE", "categor",
     f"tree 0 lists {N_SETS} category sets, each holding category 16777215 "
     "(a 40 kB file asking for 10 GB of bitsets)",
     xgb(lambda m, l, t: t.update(categories=[16777215], categories_nodes=[0] * N_SETS,
                                  categories_segments=[0] * N_SETS,
                                  categories_sizes=[1] * N_SETS)))
case("xgb_deep_tree.json", "UNSUPPORTED", "deeper",
     "tree 0 is a chain of 600 splits (the depth limit is 512)", xgb_deep_tree(600))

# --------------------------------------------------------------------------------------
# LightGBM text
# --------------------------------------------------------------------------------------

LGBM_TEXT = (VALID / "lgbm_tiny.txt").read_text()


def lgbm_edit(tree, key, value):
    """The valid LightGBM model with `key=...` of section `Tree=<tree>` replaced
    (tree=None: the header); value None deletes the line."""
    out, section, done = [], None, False
    for line in LGBM_TEXT.split("\n"):
        if line.startswith("Tree="):
            section = int(line[5:])
        elif line == "end of trees":
            section = "end"
        if not done and section == tree and line.startswith(key + "="):
            done = True
            if value is not None:
                out.append(f"{key}={value}")
            continue
        out.append(line)
    assert done, (tree, key)
    return "\n".join(out)


END = LGBM_TEXT.index("end of trees")
TREE1 = LGBM_TEXT.index("Tree=1")
LGBM_HEADER = LGBM_TEXT[: LGBM_TEXT.index("Tree=0")]

case("lgbm_truncated.txt", "PARSE", "truncated",
     "cut in the middle of Tree=1 (no 'end of trees')",
     LGBM_TEXT[: (TREE1 + END) // 2])
case("lgbm_truncated_header.txt", "PARSE", "truncated",
     "only the first three header lines", "\n".join(LGBM_TEXT.split("\n")[:3]) + "\n")
case("lgbm_no_trees.txt", "PARSE", "no trees",
     "the header followed directly by 'end of trees'", LGBM_HEADER + "end of trees\n")
case("lgbm_threshold_count_mismatch.txt", "PARSE", "threshold",
     "Tree=0 has 2 thresholds for 3 internal nodes",
     lgbm_edit(0, "threshold", "0 0.50109702348709118"))
case("lgbm_leaf_value_extra.txt", "PARSE", "leaf_value",
     "Tree=1 has 5 leaf values for 4 leaves",
     lgbm_edit(1, "leaf_value", "0.1 -0.1 0.1 -0.1 0.5"))
case("lgbm_left_child_count_mismatch.txt", "PARSE", "left_child",
     "Tree=0 'left_child' has 2 entries for 3 internal nodes",
     lgbm_edit(0, "left_child", "2 -2"))
case("lgbm_missing_left_child.txt", "PARSE", "left_child",
     "Tree=0 has no 'left_child' line", lgbm_edit(0, "left_child", None))
case("lgbm_num_leaves_huge.txt", "PARSE", "num_leaves",
     "Tree=0 declares num_leaves=10^12", lgbm_edit(0, "num_leaves", "1000000000000"))
case("lgbm_num_leaves_beyond_file.txt", "PARSE", "100000000",
     "Tree=0 declares 10^8 leaves (within the limits) but lists 4",
     lgbm_edit(0, "num_leaves", "100000000"))
case("lgbm_num_leaves_negative.txt", "PARSE", "num_leaves",
     "Tree=0 declares num_leaves=-4", lgbm_edit(0, "num_leaves", "-4"))
case("lgbm_num_leaves_zero.txt", "PARSE", "num_leaves",
     "Tree=0 declares num_leaves=0", lgbm_edit(0, "num_leaves", "0"))
case("lgbm_max_feature_idx_negative.txt", "PARSE", "max_feature_idx",
     "max_feature_idx=-2", lgbm_edit(None, "max_feature_idx", "-2"))
case("lgbm_max_feature_idx_huge.txt", "PARSE", "max_feature_idx",
     "max_feature_idx=10^12", lgbm_edit(None, "max_feature_idx", "1000000000000"))
case("lgbm_num_class_huge.txt", "PARSE", "num_class",
     "num_class=10^12", lgbm_edit(None, "num_class", "1000000000000"))
case("lgbm_feature_names_count.txt", "PARSE", "feature names",
     "2 feature names for 3 features", lgbm_edit(None, "feature_names", "age dist"))
case("lgbm_split_feature_out_of_range.txt", "PARSE", "split_feature",
     "Tree=0 node 1 splits on feature 5 of 3", lgbm_edit(0, "split_feature", "2 5 0"))
case("lgbm_split_feature_negative.txt", "PARSE", "split_feature",
     "Tree=0 node 1 splits on feature -1", lgbm_edit(0, "split_feature", "2 -1 0"))
case("lgbm_child_out_of_range.txt", "PARSE", "left_child",
     "Tree=0 node 1 has left child 7 (3 internal nodes)", lgbm_edit(0, "left_child", "2 7 -1"))
case("lgbm_leaf_out_of_range.txt", "PARSE", "right_child",
     "Tree=0 node 0 has right child leaf ~8 (4 leaves)", lgbm_edit(0, "right_child", "-9 -3 -4"))
case("lgbm_child_cycle.txt", "PARSE", "twice",
     "Tree=0 node 1 has the root as its left child", lgbm_edit(0, "left_child", "2 0 -1"))
case("lgbm_shared_leaf.txt", "PARSE", "twice",
     "Tree=0 nodes 1 and 2 share leaf 0", lgbm_edit(0, "left_child", "2 -1 -1"))
case("lgbm_bad_threshold_number.txt", "PARSE", "threshold",
     "Tree=0 threshold 'abc'", lgbm_edit(0, "threshold", "0 abc -1.0136255025863645"))
case("lgbm_decision_type_out_of_range.txt", "PARSE", "decision_type",
     "Tree=0 decision_type 300", lgbm_edit(0, "decision_type", "1 300 8"))
case("lgbm_decision_type_unknown_missing.txt", "PARSE", "missing type",
     "Tree=0 node 1 decision_type 12 (missing type 3 does not exist)",
     lgbm_edit(0, "decision_type", "1 12 8"))
case("lgbm_num_cat_too_large.txt", "PARSE", "num_cat",
     "Tree=0 num_cat=99 with 3 internal nodes", lgbm_edit(0, "num_cat", "99"))
case("lgbm_cat_index_out_of_range.txt", "PARSE", "categorical threshold",
     "Tree=0 node 0 uses category set 5 of 1",
     lgbm_edit(0, "threshold", "5 0.50109702348709118 -1.0136255025863645"))
case("lgbm_cat_boundaries_past_end.txt", "PARSE", "cat_threshold",
     "Tree=0 cat_boundaries=0 3 but cat_threshold has 1 word",
     lgbm_edit(0, "cat_boundaries", "0 3"))
case("lgbm_cat_boundaries_huge.txt", "PARSE", "cat_boundaries",
     "Tree=0 cat_boundaries=0 10^12", lgbm_edit(0, "cat_boundaries", "0 1000000000000"))
case("lgbm_cat_threshold_not_word.txt", "PARSE", "cat_threshold",
     "Tree=0 cat_threshold=-5", lgbm_edit(0, "cat_threshold", "-5"))
case("lgbm_missing_cat_boundaries.txt", "PARSE", "cat_boundaries",
     "Tree=0 has num_cat=1 and no cat_boundaries line", lgbm_edit(0, "cat_boundaries", None))
case("lgbm_unknown_objective.txt", "UNSUPPORTED", "frobnicate",
     "objective=frobnicate", lgbm_edit(None, "objective", "frobnicate"))
case("lgbm_bad_sigmoid.txt", "PARSE", "sigmoid",
     "objective=binary sigmoid:-1", lgbm_edit(None, "objective", "binary sigmoid:-1"))
case("lgbm_linear_tree.txt", "UNSUPPORTED", "linear",
     "Tree=0 is_linear=1", lgbm_edit(0, "is_linear", "1"))
case("lgbm_tree_count_not_multiple.txt", "PARSE", "divide",
     "a 3-class model (3 trees per iteration) with 2 trees",
     lgbm_edit(None, "num_class", "3").replace("num_tree_per_iteration=1", "num_tree_per_iteration=3")
     .replace("objective=binary sigmoid:1", "objective=multiclass num_class:3"))
case("lgbm_tree_per_iteration_mismatch.txt", "UNSUPPORTED", "num_tree_per_iteration",
     "num_tree_per_iteration=2 with num_class=1",
     lgbm_edit(None, "num_tree_per_iteration", "2"))

# --------------------------------------------------------------------------------------
# MedInfer forest JSON
# --------------------------------------------------------------------------------------

FOREST_TEXT = (VALID / "forest_tiny.json").read_text()
FOREST = json.loads(FOREST_TEXT)


def forest(edit):
    m = copy.deepcopy(FOREST)
    edit(m, m["trees"][0])
    return dump(m)


def forest_deep_tree(depth):
    left, right, n = chain_tree(depth)

    def edit(m, t):
        t["children_left"] = left
        t["children_right"] = right
        t["feature"] = [0 if left[i] != -1 else -2 for i in range(n)]
        t["threshold"] = [0.5 if left[i] != -1 else -2.0 for i in range(n)]
        t["missing_go_to_left"] = [0] * n
        t["value"] = [0.5] * (2 * n)
        t["weighted_n_node_samples"] = [1.0] * n
    return forest(edit)


case("forest_truncated.json", "PARSE", "truncated",
     "the valid forest cut in half", FOREST_TEXT[: len(FOREST_TEXT) // 2])
case("forest_missing_trees.json", "PARSE", "trees",
     "no 'trees' field", forest(lambda m, t: m.pop("trees")))
case("forest_missing_n_features.json", "PARSE", "n_features",
     "no 'n_features' field", forest(lambda m, t: m.pop("n_features")))
case("forest_n_features_string.json", "PARSE", "n_features",
     "'n_features' is \"three\"", forest(lambda m, t: set_(m, "n_features", "three")))
case("forest_n_features_huge.json", "PARSE", "n_features",
     "'n_features' is 1e12", forest(lambda m, t: set_(m, "n_features", 1e12)))
case("forest_n_features_negative.json", "PARSE", "n_features",
     "'n_features' is -3", forest(lambda m, t: set_(m, "n_features", -3)))
case("forest_n_outputs_huge.json", "PARSE", "n_outputs",
     "'n_outputs' is 10^12", forest(lambda m, t: set_(m, "n_outputs", 10 ** 12)))
case("forest_feature_names_count.json", "PARSE", "feature names",
     "2 feature names for 3 features", forest(lambda m, t: set_(m, "feature_names", ["a", "b"])))
case("forest_feature_names_not_strings.json", "PARSE", "feature_names",
     "feature names are numbers", forest(lambda m, t: set_(m, "feature_names", [1, 2, 3])))
case("forest_feature_out_of_range.json", "PARSE", "feature 3",
     "tree 0 node 2 splits on feature 3 of 3", forest(lambda m, t: t["feature"].__setitem__(2, 3)))
case("forest_feature_negative_split.json", "PARSE", "feature -2",
     "tree 0 node 0 (a split) has feature -2", forest(lambda m, t: t["feature"].__setitem__(0, -2)))
case("forest_child_out_of_range.json", "PARSE", "10",
     "tree 0 node 0 has left child 10 (5 nodes)",
     forest(lambda m, t: t["children_left"].__setitem__(0, 10)))
case("forest_child_index_huge.json", "PARSE", "children_left",
     "tree 0 node 0 has left child 10^12",
     forest(lambda m, t: t["children_left"].__setitem__(0, 10 ** 12)))
case("forest_child_negative.json", "PARSE", "children_right",
     "tree 0 node 2 has right child -5",
     forest(lambda m, t: t["children_right"].__setitem__(2, -5)))
case("forest_child_cycle.json", "PARSE", "twice",
     "tree 0 node 2 has the root as its left child",
     forest(lambda m, t: t["children_left"].__setitem__(2, 0)))
case("forest_shared_subtree.json", "PARSE", "twice",
     "tree 0 node 2 has node 1 (already node 0's left child) as its left child",
     forest(lambda m, t: t["children_left"].__setitem__(2, 1)))
case("forest_one_child.json", "PARSE", "one child",
     "tree 0 node 2 has a left child and right child -1",
     forest(lambda m, t: t["children_right"].__setitem__(2, -1)))
case("forest_value_length_mismatch.json", "PARSE", "value",
     "tree 0 has 9 values for 5 nodes x 2", forest(lambda m, t: t["value"].pop()))
case("forest_array_length_mismatch.json", "PARSE", "weighted_n_node_samples",
     "tree 0 has 4 node weights for 5 nodes",
     forest(lambda m, t: t["weighted_n_node_samples"].pop()))
case("forest_threshold_wrong_type.json", "PARSE", "threshold",
     "tree 0 threshold[0] is [0.5]", forest(lambda m, t: t["threshold"].__setitem__(0, [0.5])))
case("forest_threshold_not_array.json", "PARSE", "threshold",
     "tree 0 'threshold' is a number", forest(lambda m, t: set_(t, "threshold", 0.5)))
case("forest_missing_go_to_left_bad.json", "PARSE", "missing_go_to_left",
     "tree 0 missing_go_to_left[0] is 2",
     forest(lambda m, t: t["missing_go_to_left"].__setitem__(0, 2)))
case("forest_leaf_width_bad.json", "PARSE", "leaf_width",
     "tree 0 leaf_width 3 with 2 outputs", forest(lambda m, t: set_(t, "leaf_width", 3)))
case("forest_output_index_out_of_range.json", "PARSE", "output_index",
     "tree 0 output_index 2 with 2 outputs", forest(lambda m, t: set_(t, "output_index", 2)))
case("forest_empty_tree.json", "PARSE", "children_left",
     "tree 0 has no nodes",
     forest(lambda m, t: t.update(children_left=[], children_right=[], feature=[], threshold=[],
                                  missing_go_to_left=[], value=[],
                                  weighted_n_node_samples=[])))
case("forest_no_trees.json", "PARSE", "no trees",
     "an empty tree list", forest(lambda m, t: set_(m, "trees", [])))
case("forest_format_version_2.json", "UNSUPPORTED", "format_version",
     "format_version 2", forest(lambda m, t: set_(m, "format_version", 2)))
case("forest_unknown_aggregation.json", "PARSE", "aggregation",
     "aggregation \"median\"", forest(lambda m, t: set_(m, "aggregation", "median")))
case("forest_unknown_post_transform.json", "PARSE", "post_transform",
     "post_transform \"tanh\"", forest(lambda m, t: set_(m, "post_transform", "tanh")))
case("forest_sigmoid_two_outputs.json", "PARSE", "sigmoid",
     "post_transform sigmoid (one raw output) with n_outputs 2",
     forest(lambda m, t: set_(m, "post_transform", "sigmoid")))
case("forest_base_margin_count.json", "PARSE", "base_margin",
     "3 base margins for 2 outputs", forest(lambda m, t: set_(m, "base_margin", [0, 0, 0])))
case("forest_preprocessing_length.json", "PARSE", "preprocessing",
     "MinMax scale with 2 values for 3 features",
     forest(lambda m, t: set_(m["preprocessing"], "scale", [1.0, 1.0])))
case("forest_preprocessing_unknown_type.json", "UNSUPPORTED", "preprocessing",
     "preprocessing type \"robust\"",
     forest(lambda m, t: set_(m["preprocessing"], "type", "robust")))
case("forest_preprocessing_zero_scale.json", "PARSE", "scale",
     "StandardScaler with a zero scale",
     forest(lambda m, t: set_(m, "preprocessing",
                              {"type": "standard", "mean": [0, 0, 0], "scale": [1, 0, 1]})))
case("forest_deep_tree.json", "UNSUPPORTED", "deeper",
     "tree 0 is a chain of 600 splits (the depth limit is 512)", forest_deep_tree(600))

# --------------------------------------------------------------------------------------
# Not a model at all
# --------------------------------------------------------------------------------------

rng = random.Random(20240611)
case("garbage_random.bin", "PARSE", "format",
     "4096 random bytes (seeded)", bytes(rng.randrange(256) for _ in range(4096)))
case("garbage_brace_random.json", "PARSE", "JSON",
     "'{' followed by 4096 random bytes",
     b"{" + bytes(rng.randrange(256) for _ in range(4096)))
case("garbage_tree_random.txt", "PARSE", "LightGBM",
     "'tree' followed by 4096 random bytes",
     b"tree\n" + bytes(rng.randrange(256) for _ in range(4096)))
case("nul_bytes.bin", "PARSE", "format",
     "64 zero bytes", bytes(64))
case("whitespace_only.txt", "PARSE", "white space",
     "blank lines only", " \n\t\r\n\n")
case("json_array_root.json", "PARSE", "format",
     "a JSON array, not an object", "[1, 2, 3]\n")
case("json_unrecognized_object.json", "PARSE", "learner",
     "a JSON object that is neither format", '{"format": "onnx", "graph": {}}\n')
case("json_utf8_bom_truncated.json", "PARSE", "truncated",
     "a UTF-8 byte order mark and a truncated XGBoost model",
     b"\xef\xbb\xbf" + XGB_TEXT[: len(XGB_TEXT) // 3].encode())


def write_all():
    for old in HERE.iterdir():
        if old.name not in ("README.md", "make_malformed.py") and old.is_file():
            old.unlink()
    names = set()
    for name, status, substring, description, data in CASES:
        assert name not in names, name
        names.add(name)
        (HERE / name).write_bytes(data)
    lines = [
        "# Malformed model files",
        "",
        "Each file holds one deliberate defect, derived from a tiny valid model in",
        "`../valid/` (or plain garbage). `Tests/CAPI/test_capi.c` loads every file in this",
        "directory with `medinfer_model_load()` and `medinfer_model_load_from_memory()` and",
        "checks the status code (never OK, never a crash) and that the message contains the",
        "word in the third column. The test reads the table below: a file without a row, or",
        "a row without a file, is a test failure. \"A or B\" accepts either status.",
        "",
        "Regenerate with `python3 Tests/Fixtures/malformed/make_malformed.py` (it rewrites",
        "the files and this README; edit the script, not the files).",
        "",
        "| file | expected status | message mentions | what is wrong |",
        "| --- | --- | --- | --- |",
    ]
    for name, status, substring, description, _ in CASES:
        assert "|" not in substring and "`" not in substring
        lines.append(f"| `{name}` | {status} | `{substring}` | {description} |")
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} files and README.md")


if __name__ == "__main__":
    write_all()
